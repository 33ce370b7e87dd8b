// Preloaded into every test process and every server the tests spawn (NODE_OPTIONS=--require): any
// attempt to open a connection to an address outside the loopback range throws, so no test can reach
// the instance metadata address (169.254.169.254), a real Entra ID or a real Defender API, even by mistake.
'use strict';
const net = require('node:net');

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

function targetOf(args) {
  const first = args[0];
  if (Array.isArray(first)) return targetOf(first); // internal normalized form
  if (first && typeof first === 'object') return first.path ? null : first.host ?? 'localhost';
  if (typeof first === 'number') return typeof args[1] === 'string' ? args[1] : 'localhost';
  return null; // a pipe path
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  const host = targetOf(args);
  if (host !== null && !LOOPBACK.test(String(host).replace(/^\[|\]$/g, ''))) {
    throw new Error(`Test network guard: connection to ${host} refused; tests may only reach loopback addresses.`);
  }
  return connect.apply(this, args);
};
