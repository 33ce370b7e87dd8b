// The container's health check (Dockerfile HEALTHCHECK, Kubernetes exec probes): GET a probe path of the
// server in this container and exit 0 on 200, 1 otherwise. Follows MDE_HTTP_PORT and MDE_HTTP_HOST (a
// wildcard bind is reached on loopback). Usage: node /app/healthcheck.mjs [/healthz | /readyz]
const path = process.argv[2] ?? '/healthz';
const port = Number(process.env.MDE_HTTP_PORT || 8080);
const host = process.env.MDE_HTTP_HOST;
const target = !host || host === '0.0.0.0' || host === '::' || host === '[::]' ? '127.0.0.1' : host.replace(/^\[(.*)\]$/, '$1');
const tls = Boolean(process.env.MDE_HTTP_TLS_CERT_PATH);
const { request } = await import(tls ? 'node:https' : 'node:http');
const req = request({ host: target, port, path, method: 'GET', timeout: 4000, rejectUnauthorized: false }, (res) => {
  res.resume();
  process.exitCode = res.statusCode === 200 ? 0 : 1;
  if (res.statusCode !== 200) process.stderr.write(`healthcheck: ${path} answered ${res.statusCode}\n`);
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (error) => {
  process.stderr.write(`healthcheck: ${path} on ${target}:${port}: ${error.message}\n`);
  process.exitCode = 1;
});
req.end();
