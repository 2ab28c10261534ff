// A mock Hugging Face hub on 127.0.0.1 (loopback only): resolve URLs, LFS redirects to a CDN on another
// origin, X-Linked-* headers, Range requests, and injected faults.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

interface Served {
  body: Buffer;
  /** LFS files answer the resolve URL with a redirect to the CDN and X-Linked-* headers. */
  lfs: boolean;
  etag?: string;
}

interface Logged {
  method: string;
  url: string;
  range?: string;
  auth?: string;
  server: 'hub' | 'cdn';
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

export class MockHub {
  files = new Map<string, Served>();
  log: Logged[] = [];
  /** Paths whose first GET body is cut off half-way (socket destroyed). */
  cutFirst = new Set<string>();
  /** Paths served whole (200) even when a Range is asked for. */
  ignoreRange = new Set<string>();
  /** Paths whose GET body never ends (chunked, no Content-Length: the body repeated forever). */
  endless = new Set<string>();
  /** Paths whose HEAD announces no size. */
  noSize = new Set<string>();
  /** Body bytes handed to sockets by endless responses. */
  endlessSent = 0;
  private gets = new Map<string, number>();
  hub!: http.Server;
  cdn!: http.Server;
  hubUrl = '';
  cdnUrl = '';

  async start(): Promise<void> {
    this.hub = http.createServer((q, r) => this.handle('hub', q, r));
    this.cdn = http.createServer((q, r) => this.handle('cdn', q, r));
    for (const s of [this.hub, this.cdn]) await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
    this.hubUrl = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    // A different origin (localhost vs 127.0.0.1), like HF's CDN: Authorization must not follow.
    this.cdnUrl = `http://localhost:${(this.cdn.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise((res) => s.close(res));
    }
  }

  reset(): void {
    this.files.clear();
    this.log = [];
    this.cutFirst.clear();
    this.ignoreRange.clear();
    this.endless.clear();
    this.noSize.clear();
    this.endlessSent = 0;
    this.gets.clear();
  }

  serve(repo: string, file: string, body: Buffer, lfs: boolean, etag?: string): void {
    this.files.set(`/${repo}/resolve/main/${file}`, { body, lfs, etag });
  }

  gotten(server: 'hub' | 'cdn' = 'cdn'): Logged[] {
    return this.log.filter((l) => l.method === 'GET' && l.server === server);
  }

  private handle(server: 'hub' | 'cdn', q: http.IncomingMessage, r: http.ServerResponse): void {
    const url = q.url ?? '';
    this.log.push({ method: q.method ?? '', url, range: q.headers.range, auth: q.headers.authorization, server });
    if (server === 'hub') {
      const f = this.files.get(url);
      if (!f) {
        r.writeHead(404, { 'Content-Type': 'text/plain' }).end('Entry not found');
        return;
      }
      if (f.lfs) {
        const etag = f.etag ?? sha256(f.body);
        r.writeHead(302, {
          Location: `${this.cdnUrl}/cdn${url}`,
          'X-Linked-Etag': `"${etag}"`,
          'X-Linked-Size': String(f.body.length),
          ETag: '"not-the-content-etag"',
        });
        r.end();
        return;
      }
      this.send(url, f, q, r, `"${f.etag ?? sha256(f.body).slice(0, 40)}"`);
      return;
    }
    const f = this.files.get(url.replace(/^\/cdn/, ''));
    if (!f) {
      r.writeHead(404).end();
      return;
    }
    this.send(url, f, q, r, `"${sha256(f.body)}"`);
  }

  private send(key: string, f: Served, q: http.IncomingMessage, r: http.ServerResponse, etag: string): void {
    const total = f.body.length;
    if (q.method === 'HEAD') {
      r.writeHead(200, this.noSize.has(key) ? { ETag: etag } : { 'Content-Length': String(total), ETag: etag }).end();
      return;
    }
    if (this.endless.has(key)) {
      r.writeHead(200, { ETag: etag });
      const pump = () => {
        while (!r.destroyed) {
          this.endlessSent += f.body.length;
          if (!r.write(f.body)) {
            r.once('drain', pump);
            return;
          }
        }
      };
      pump();
      return;
    }
    const n = (this.gets.get(key) ?? 0) + 1;
    this.gets.set(key, n);
    const m = /^bytes=(\d+)-$/.exec(q.headers.range ?? '');
    let start = 0;
    if (m && !this.ignoreRange.has(key)) {
      start = Number(m[1]);
      if (start >= total) {
        r.writeHead(416, { 'Content-Range': `bytes */${total}` }).end();
        return;
      }
      r.writeHead(206, {
        'Content-Length': String(total - start),
        'Content-Range': `bytes ${start}-${total - 1}/${total}`,
        ETag: etag,
      });
    } else {
      r.writeHead(200, { 'Content-Length': String(total), ETag: etag });
    }
    const body = f.body.subarray(start);
    if (n === 1 && this.cutFirst.has(key)) {
      r.write(body.subarray(0, Math.floor(body.length / 2)), () => {
        setTimeout(() => r.socket?.destroy(), 20);
      });
      return;
    }
    r.end(body);
  }
}
