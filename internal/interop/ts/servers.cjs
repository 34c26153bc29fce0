// MCP servers built on the official TypeScript SDK, each on its own HTTPS
// port of 127.0.0.1, for the exporter's interop test. Usage:
//   node servers.cjs CERT_FILE KEY_FILE
// It prints one JSON line per server, {"kind","port"}, then {"ready":true},
// and then one JSON line per event the servers see: "tls" for every
// accepted TLS connection ('secureConnection'), "open" for a session the
// SDK initialized, "delete" for a DELETE that ended one, "lost" for a
// request carrying a session this server does not hold.
'use strict';
const fs = require('node:fs');
const https = require('node:https');
const { randomUUID } = require('node:crypto');
const { McpServer } = require('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { SSEServerTransport } = require('@modelcontextprotocol/sdk/server/sse.js');

const [cert, key] = process.argv.slice(2).map((f) => fs.readFileSync(f));
const TOKEN = 'interop-token';
const log = (kind, ev, extra) => process.stdout.write(JSON.stringify({ kind, ev, ...extra }) + '\n');

function newServer(kind) {
  const s = new McpServer({ name: 'ts-' + kind, version: '9.9.9' });
  s.registerTool('delete_everything', { description: 'a probe must never call this' }, async () => {
    log(kind, 'tool');
    return { content: [] };
  });
  return s;
}

// stateful serves Streamable HTTP with a session per initialize. With
// stallAfterInit, every POST after initialize gets no answer; with forget,
// sessions are never kept, as on a replica that did not see the initialize.
function stateful(kind, { stallAfterInit = false, forget = false } = {}) {
  const sessions = new Map();
  return async (req, res) => {
    const id = req.headers['mcp-session-id'];
    if (id && req.method === 'DELETE' && sessions.has(id)) {
      log(kind, 'delete', { id });
    }
    if (id && !sessions.has(id)) {
      log(kind, 'lost', { id, method: req.method });
      // What the SDK's transport answers for a session it does not hold.
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
      return;
    }
    if (id && stallAfterInit && req.method === 'POST') {
      log(kind, 'stall', { id });
      return; // never answered
    }
    let transport = id && sessions.get(id);
    if (!transport) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sid) => {
          log(kind, 'open', { id: sid });
          if (!forget) sessions.set(sid, transport);
        },
      });
      transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
      await newServer(kind).connect(transport);
    }
    await transport.handleRequest(req, res);
  };
}

function stateless(kind) {
  return async (req, res) => {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const server = newServer(kind);
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res);
  };
}

function sse(kind) {
  const streams = new Map();
  return async (req, res) => {
    const url = new URL(req.url, 'https://localhost');
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res);
      streams.set(transport.sessionId, transport);
      log(kind, 'open', { id: transport.sessionId });
      res.on('close', () => { streams.delete(transport.sessionId); log(kind, 'delete', { id: transport.sessionId }); });
      await newServer(kind).connect(transport);
      return;
    }
    const transport = url.pathname === '/messages' && streams.get(url.searchParams.get('sessionId'));
    if (req.method === 'POST' && transport) {
      await transport.handlePostMessage(req, res);
      return;
    }
    res.writeHead(405, { Allow: 'GET' }).end();
  };
}

// guarded wants the bearer token; its 401 points at RFC 9728 metadata
// (modern) or at nothing, with RFC 8414 metadata at the root (2025-03-26).
function guarded(kind, inner, modern) {
  return async (req, res, base) => {
    const url = new URL(req.url, base);
    const json = (body) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    if (modern && url.pathname === '/.well-known/oauth-protected-resource/mcp') {
      return json({ resource: base + '/mcp', authorization_servers: ['https://auth.example'] });
    }
    if (!modern && url.pathname === '/.well-known/oauth-authorization-server') {
      return json({ issuer: base, authorization_endpoint: base + '/authorize', token_endpoint: base + '/token',
        response_types_supported: ['code'], code_challenge_methods_supported: ['S256'] });
    }
    if (url.pathname !== '/mcp') return res.writeHead(404).end();
    if (req.headers.authorization !== 'Bearer ' + TOKEN) {
      const challenge = modern ? `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"` : 'Bearer';
      res.writeHead(401, { 'WWW-Authenticate': challenge, 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ error: 'invalid_token' }));
    }
    return inner(req, res);
  };
}

const kinds = {
  stateful: stateful('stateful'),
  stateless: stateless('stateless'),
  sse: sse('sse'),
  bearer: guarded('bearer', stateful('bearer'), true),
  legacyauth: guarded('legacyauth', stateful('legacyauth'), false),
  stall: stateful('stall', { stallAfterInit: true }),
  lost: stateful('lost', { forget: true }),
};

let pending = Object.keys(kinds).length;
for (const [kind, handler] of Object.entries(kinds)) {
  const srv = https.createServer({ cert, key }, (req, res) => {
    log(kind, 'request', { method: req.method, path: req.url.split('?')[0], ua: req.headers['user-agent'] });
    const base = 'https://' + req.headers.host;
    Promise.resolve(handler(req, res, base)).catch((err) => {
      log(kind, 'error', { message: String(err) });
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  srv.on('secureConnection', () => log(kind, 'tls'));
  srv.listen(0, '127.0.0.1', () => {
    log(kind, 'listen', { port: srv.address().port });
    if (--pending === 0) process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  });
}
