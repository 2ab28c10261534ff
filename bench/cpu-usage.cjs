// Preloaded by bench/startup.ts (`node --require`): prints the process's CPU time (all threads) at exit.
process.on('exit', () => {
  const u = process.cpuUsage();
  process.stderr.write(`\nCPU_MS ${((u.user + u.system) / 1000).toFixed(1)}\n`);
});
