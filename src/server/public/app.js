// The AudioX page: builds the form from GET /api/info, submits POST /api/generate, follows the job over
// Server-Sent Events (progress, previews, result) and cancels with DELETE /api/jobs/:id. No build step.
'use strict';

const $ = (sel) => document.querySelector(sel);
const form = $('#gen-form');
let info = null;
let current = null; // { id, events: EventSource }
let lastJob = null;

function setState(state) {
  document.body.dataset.state = state;
  const busy = state === 'submitting' || state === 'queued' || state === 'running';
  $('#generate').disabled = busy;
  $('#cancel').disabled = !busy || state === 'submitting';
}

function fmtTime(ms) {
  if (ms == null) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function showError(msg) {
  const el = $('#error');
  el.textContent = msg;
  el.hidden = !msg;
}

function fillDefaults() {
  for (const [name, f] of Object.entries(info.fields)) {
    const el = form.elements.namedItem(name);
    if (!el || el.type === 'file') continue;
    if (f.kind === 'boolean') {
      el.checked = f.default;
      continue;
    }
    if (typeof f.min === 'number') {
      el.min = String(f.min);
      el.max = String(f.max);
    }
    if (f.help) el.title = f.help;
    el.value = String(name === 'previewEvery' ? info.defaults.previewEvery : f.default);
  }
  $('#seed').value = '';
  $('#seed-random').checked = true;
  $('#seed').disabled = true;
  setInpaint(false);
  offerSamplers(true);
}

/**
 * The sampler <select> offers the samplers of the chosen model's diffusion objective (all of them when the
 * server does not know it); `reset` (or a sampler the model cannot use) selects the objective's default.
 */
function offerSamplers(reset) {
  const objective = info.modelObjectives[$('#model').value] ?? null;
  const el = $('#sampler');
  const keep = el.value;
  const offered = info.samplers.filter((s) => objective === null || s.objective === objective);
  el.replaceChildren(
    ...offered.map((s) => {
      const o = new Option(s.inReference ? s.name : `${s.name} (ours)`, s.name);
      o.title = s.description;
      return o;
    }),
  );
  const fallback = objective === null ? info.fields.sampler.default : info.defaultSamplers[objective];
  el.value = !reset && offered.some((s) => s.name === keep) ? keep : fallback;
}

// Inpainting fields are submitted only while the box is ticked (a disabled fieldset is not sent).
function setInpaint(on) {
  $('#inpaint-on').checked = on;
  $('#inpaint-fields').disabled = !on;
}
$('#inpaint-on').addEventListener('change', (e) => setInpaint(e.target.checked));

async function init() {
  const r = await fetch('/api/info');
  info = await r.json();
  const model = $('#model');
  for (const m of info.models) model.add(new Option(m, m, m === info.defaultModel, m === info.defaultModel));
  model.addEventListener('change', () => offerSamplers(false));
  fillDefaults();
  const tbody = $('#examples tbody');
  info.examples.forEach((ex, i) => {
    const tr = document.createElement('tr');
    tr.innerHTML = `<td><b>${ex.task}</b> ${ex.title}</td><td></td><td>${ex.video ? 'sample video' : '—'}</td>` +
      `<td><button type="button" data-example="${i}">Load ${ex.task}</button></td>`;
    tr.children[1].textContent = ex.prompt;
    tbody.append(tr);
  });
  document.querySelectorAll('input[type=file]').forEach((el) => (el.title = `up to ${info.limits.uploadLimit}`));
  setState('idle');
}

// ---- uploads with inline previews -------------------------------------------------------------------

function showPreview(field) {
  const input = $(`#${field}`);
  const preview = $(`#${field}-preview`);
  if (!preview) return;
  if (preview.src) URL.revokeObjectURL(preview.src);
  const file = input.files && input.files[0];
  if (file) {
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
  } else {
    preview.removeAttribute('src');
    preview.hidden = true;
  }
}

function setFile(field, file) {
  const dt = new DataTransfer();
  if (file) dt.items.add(file);
  $(`#${field}`).files = dt.files;
  showPreview(field);
}

for (const field of ['video', 'image', 'audio', 'initAudio']) $(`#${field}`).addEventListener('change', () => showPreview(field));
document.querySelectorAll('[data-clear]').forEach((b) => b.addEventListener('click', () => setFile(b.dataset.clear, null)));

$('#seed-random').addEventListener('change', (e) => {
  $('#seed').disabled = e.target.checked;
});

// ---- examples ---------------------------------------------------------------------------------------

let sampleVideo = null;
async function loadExample(i) {
  const ex = info.examples[i];
  fillDefaults();
  $('#prompt').value = ex.prompt;
  $('#seed-random').checked = false;
  $('#seed').disabled = false;
  $('#seed').value = String(ex.seed);
  setFile('image', null);
  setFile('audio', null);
  setFile('initAudio', null);
  if (ex.video) {
    if (!sampleVideo) {
      const r = await fetch('/api/examples/video');
      if (!r.ok) throw new Error(`could not load the sample video (${r.status})`);
      sampleVideo = new File([await r.blob()], 'sample-video.mp4', { type: 'video/mp4' });
    }
    setFile('video', sampleVideo);
  } else {
    setFile('video', null);
  }
  document.body.dataset.example = ex.task;
}

$('#examples').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-example]');
  if (b) loadExample(Number(b.dataset.example)).catch((err) => showError(String(err.message || err)));
});

// ---- generate / follow / cancel ---------------------------------------------------------------------

function renderProgress(job) {
  const box = $('#progress-box');
  box.hidden = false;
  const p = job.progress;
  const q = $('#queue-status');
  if (job.status === 'queued') {
    q.textContent = `busy, position ${job.position} in the queue`;
    $('#progress-text').textContent = 'waiting for the running job to finish…';
    return;
  }
  q.textContent = job.cancelRequested && job.status === 'running' ? 'cancelling…' : '';
  if (!p) return;
  const bar = $('#progress');
  // Steps not known in advance (an adaptive sampler): the bar shows the fraction of the noise range covered.
  bar.max = p.steps === null ? 1 : p.steps || 1;
  bar.value = p.steps === null ? p.fraction : p.step;
  const parts = [p.stage];
  if (p.stage === 'sampling' || p.step > 0) {
    parts.push(p.steps === null ? `step ${p.step} (adaptive, ${Math.round(p.fraction * 100)}%)` : `step ${p.step}/${p.steps}`);
  }
  parts.push(`elapsed ${fmtTime(p.elapsedMs)}`);
  if (job.status === 'running') parts.push(`ETA ${fmtTime(p.etaMs)}`);
  $('#progress-text').textContent = parts.join(' · ');
  document.body.dataset.maxStep = String(Math.max(Number(document.body.dataset.maxStep || 0), p.step));
}

function renderResult(job) {
  const res = job.result;
  const box = $('#result-items');
  box.textContent = '';
  res.items.forEach((it, i) => {
    const div = document.createElement('div');
    div.className = 'item';
    const label = res.items.length > 1 ? `Item ${i + 1} — ` : '';
    div.innerHTML =
      `<div>${label}<a class="download-audio" download href="${it.urls.audio}?download=1">Download WAV</a>` +
      (it.urls.video ? ` · <a class="download-video" download href="${it.urls.video}?download=1">Download MP4</a>` : '') +
      `</div><audio class="result-audio" controls preload="auto" src="${it.urls.audio}"></audio>` +
      (it.urls.video ? `<video class="result-video" controls preload="metadata" src="${it.urls.video}"></video>` : '') +
      `<img class="result-spectrogram" alt="spectrogram" src="${it.urls.spectrogram}">` +
      `<img class="result-waveform" alt="waveform" src="${it.urls.waveform}">` +
      `<button type="button" class="to-init">Send to init audio</button>`;
    div.querySelector('.to-init').addEventListener('click', async () => {
      const r = await fetch(it.urls.audio);
      if (!r.ok) return showError(`could not fetch the result (${r.status})`);
      setFile('initAudio', new File([await r.blob()], `result-${i + 1}.wav`, { type: 'audio/wav' }));
      $('#init-box').open = true;
    });
    box.append(div);
  });
  const used = { model: job.model, ...job.params };
  $('#result-params').textContent =
    `${JSON.stringify(used, null, 2)}\n\n// resolved by the pipeline:\n${JSON.stringify(res.params, null, 2)}`;
  $('#result').hidden = false;
}

function follow(job) {
  const events = new EventSource(job.urls.events);
  current = { id: job.id, events };
  const onUpdate = (e) => {
    const j = JSON.parse(e.data);
    lastJob = j;
    if (j.status === 'queued' || j.status === 'running') setState(j.status);
    renderProgress(j);
    if (e.type === 'preview' && j.urls.preview) {
      $('#preview').src = j.urls.preview;
      $('#preview').hidden = false;
      document.body.dataset.previews = String(j.previews);
    }
  };
  const onEnd = (e) => {
    const j = JSON.parse(e.data);
    lastJob = j;
    events.close();
    current = null;
    renderProgress(j);
    $('#queue-status').textContent = '';
    if (j.status === 'done') {
      $('#progress-text').textContent += ' · done';
      renderResult(j);
    }
    else if (j.status === 'failed') showError(`Generation failed: ${j.error}`);
    else if (j.status === 'cancelled') $('#progress-text').textContent += ' · cancelled';
    setState(j.status);
  };
  for (const t of ['status', 'progress', 'preview']) events.addEventListener(t, onUpdate);
  for (const t of ['done', 'failed', 'cancelled']) events.addEventListener(t, onEnd);
  events.onerror = () => {
    if (events.readyState === EventSource.CLOSED && current && current.id === job.id) {
      showError('Lost the connection to the server.');
      setState('failed');
    }
  };
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (current) return;
  showError('');
  $('#result').hidden = true;
  $('#preview').hidden = true;
  document.body.dataset.maxStep = '0';
  document.body.dataset.previews = '0';
  setState('submitting');
  const data = new FormData(form);
  data.set('seed', $('#seed-random').checked || $('#seed').value === '' ? '-1' : $('#seed').value);
  for (const [k, v] of [...data.entries()]) if (v instanceof File && v.size === 0 && !v.name) data.delete(k);
  let r;
  try {
    r = await fetch('/api/generate', { method: 'POST', body: data });
  } catch (err) {
    showError(`Could not reach the server: ${err.message}`);
    return setState('idle');
  }
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (r.status !== 202) {
    const prefix = r.status === 429 ? 'Server busy' : r.status === 413 ? 'Upload too large' : 'Rejected';
    showError(`${prefix}: ${body.error}`);
    return setState('idle');
  }
  lastJob = body;
  renderProgress(body);
  setState(body.status);
  follow(body);
});

$('#cancel').addEventListener('click', async () => {
  if (!current) return;
  $('#queue-status').textContent = 'cancelling…';
  await fetch(`/api/jobs/${current.id}`, { method: 'DELETE' });
});

$('#reuse').addEventListener('click', () => {
  if (!lastJob) return;
  const p = lastJob.params;
  for (const [k, v] of Object.entries(p)) {
    const el = form.elements.namedItem(k);
    if (!el || el.type === 'file') continue;
    if (el.type === 'checkbox') el.checked = v === true;
    else el.value = v === undefined || v === null ? '' : String(v);
  }
  setInpaint(p.inpaintStart !== undefined && p.inpaintStart !== null);
  $('#model').value = lastJob.model;
  $('#seed-random').checked = false;
  $('#seed').disabled = false;
  $('#seed').value = String(p.seed);
});

init().catch((err) => {
  showError(`Could not load /api/info: ${err.message}`);
  setState('failed');
});
