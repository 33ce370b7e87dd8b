// The same Defender requests the server makes for one call, made straight to the fake: the floor for
// per-call overhead. Since issue 9 a write reads the device's action history first (an unrestrict already
// pending settles the call without a prompt or a POST), so the floor is that GET plus the POST.
// Imported by scripts/bench.mjs (in the process that runs the fakes), and run on its own
// (`node direct.mjs <api url> <device> <n>`, prints the timings as JSON) for the same requests from
// another process, as the server makes them.
import { fileURLToPath } from 'node:url';

export async function directRequests(apiUrl, device, n) {
  const out = [];
  const body = JSON.stringify({ Comment: 'INC-1: bench' });
  const history = `${apiUrl}/api/machineactions?${new URLSearchParams({ $filter: `machineId eq '${device}'` })}`;
  for (let i = 0; i < n + 100; i++) {
    const t0 = process.hrtime.bigint();
    const read = await fetch(history, { headers: { Authorization: 'Bearer bench', Accept: 'application/json' } });
    await read.text();
    const res = await fetch(`${apiUrl}/api/machines/${device}/unrestrictCodeExecution`, {
      method: 'POST',
      headers: { Authorization: 'Bearer bench', 'Content-Type': 'application/json', Accept: 'application/json' },
      body,
    });
    await res.text();
    if (i >= 100) out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [apiUrl, device, n] = process.argv.slice(2);
  process.stdout.write(JSON.stringify(await directRequests(apiUrl, device, Number(n))));
}
