import { createClient } from 'redis';
import { spawn } from 'node:child_process';
const sock = '/tmp/rx/r.sock';
const start = () => { const p = spawn('redis-server', ['--port','0','--unixsocket',sock,'--save','','--appendonly','no'], {stdio:'ignore'}); return p; };
let srv = start();
await new Promise(r=>setTimeout(r,200));
const c = createClient({ url: `unix://${sock}`, disableOfflineQueue: true, commandOptions: { timeout: 1000 }, socket: { reconnectStrategy: (n) => Math.min(50 * 2 ** n, 1000), connectTimeout: 1000 } });
c.on('error', e => console.log('err event', e.message));
c.on('ready', () => console.log('ready'));
await c.connect();
console.log(await c.ping(), c.isReady);
console.log(await c.sendCommand(['SET','k','1','NX','PXAT', String(Date.now()-1000)]));
srv.kill('SIGTERM'); await new Promise(r=>setTimeout(r,300));
let t=Date.now(); try { await c.ping(); } catch(e) { console.log('while down:', e.constructor.name, e.message, Date.now()-t,'ms'); }
srv = start(); await new Promise(r=>setTimeout(r,1500));
console.log('after restart', c.isReady, await c.ping().catch(e=>e.message));
srv.kill('SIGSTOP'); t=Date.now(); try { await c.ping(); } catch(e) { console.log('while stopped:', e.constructor.name, e.message, Date.now()-t,'ms'); }
srv.kill('SIGCONT'); await new Promise(r=>setTimeout(r,300));
console.log('after cont', await c.ping().catch(e=>e.message));
srv.kill('SIGTERM');
// initial connect to nothing
const d = createClient({ url: `unix:///tmp/rx/none.sock`, disableOfflineQueue: true, socket: { reconnectStrategy: (n) => Math.min(50 * 2 ** n, 1000), connectTimeout: 1000 } });
let errs=0; d.on('error', e => errs++);
t=Date.now();
const p = d.connect().then(()=>console.log('connected?'), e=>console.log('connect rejected', e.message, Date.now()-t));
await new Promise(r=>setTimeout(r,1000));
console.log('after 1s: errs', errs, 'isOpen', d.isOpen, 'isReady', d.isReady);
try { await d.ping(); } catch(e) { console.log('cmd while never connected:', e.message); }
d.destroy();
await p;
c.destroy();
