// Test peer: a modern-only (2026-07-28) MCP server on the TypeScript SDK v2
// (`@modelcontextprotocol/server`, pinned in package.json), over plain node:http.
//
//   node tests/peers/ts_modern_server.mjs [--port 0]
//
// Binds 127.0.0.1 only (port 0: the OS picks) and prints exactly one stdout line,
// `READY http://127.0.0.1:PORT`, once it accepts connections. `/mcp` is served by
// `createMcpHandler(factory, {legacy: 'reject'})`: no 2025-era serving at all (a legacy
// `initialize` is refused, GET/DELETE get 405). Exits on SIGTERM/SIGINT and when its stdin
// closes (so it never outlives the Python process that started it with a pipe).
//
// Tools: echo(text), slow(seconds, steps) with progress, elicit(question) (form elicitation),
// sample(prompt), roots() -- all three through MRTR `input_required`, with a `requestState`
// sealed by the SDK's HMAC codec that the retry must echo -- log(message) (an info log,
// filtered by the request's `_meta` logLevel), notify_tools_changed() (publishes
// tools/list_changed to the open `subscriptions/listen` streams), route(region, query) where
// `region` is annotated `"x-mcp-header": "Region"` (the tool answers with the Mcp-Param-Region
// header it received). A prompt `greet(name)` and a resource `text://hello`.
//
// Control endpoints (not MCP):
//   GET /_seen                 {"requests": [...]}: every HTTP request to /mcp, oldest first:
//                              headers (lowercased, as received), the JSON-RPC fields, the
//                              response's status, headers and body text (SSE frames as they are
//                              written), and state "open" | "complete" | "disconnected".
//   GET /_seen?client=NAME     only the entries whose _meta clientInfo.name is NAME (or, for an
//                              initialize, whose params.clientInfo.name is).
//   GET /_listeners?at_least=N&timeout_ms=T[&client=NAME]
//                              answers {"listeners": n} as soon as N listen streams are
//                              subscribed to the change bus (with `client`: N open, acknowledged
//                              listen streams whose _meta named NAME); 408 with n after T ms.

import http from 'node:http';
import process from 'node:process';

import {
  createMcpHandler,
  createRequestStateCodec,
  fromJsonSchema,
  InMemoryServerEventBus,
  inputRequired,
  inputResponse,
  McpServer,
} from '@modelcontextprotocol/server';

export const SERVER_NAME = 'ts-modern-peer';
export const SERVER_VERSION = '2.4.0-peer';
export const INSTRUCTIONS = 'TypeScript SDK v2 test peer for mcp-remote-py (modern only).';

const args = process.argv.slice(2);
const portIndex = args.indexOf('--port');
const port = portIndex >= 0 ? Number(args[portIndex + 1]) : 0;

// --- the change bus, observable -----------------------------------------------------------

const innerBus = new InMemoryServerEventBus((error) => process.stderr.write(`bus: ${error}\n`));
const listenerWaiters = new Set();
const bus = {
  publish: (event) => innerBus.publish(event),
  subscribe(listener) {
    const unsubscribe = innerBus.subscribe(listener);
    wakeListenerWaiters();
    return () => {
      unsubscribe();
      wakeListenerWaiters();
    };
  },
};
function wakeListenerWaiters() {
  for (const waiter of [...listenerWaiters]) waiter();
}

// --- the server ---------------------------------------------------------------------------

const codec = createRequestStateCodec({ key: 'mcp-remote-py ts peer key, 32+ bytes long!' });
const text = (value) => ({ content: [{ type: 'text', text: String(value) }] });
const toolError = (value) => ({ ...text(value), isError: true });
const schema = (properties, required = Object.keys(properties)) =>
  fromJsonSchema({ type: 'object', properties, required });
const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason ?? new Error('aborted'));
    });
  });

// The retry of an MRTR tool: its echoed requestState, checked by the codec before the handler
// runs (a tampered one is refused with -32602); here it must also name this very call.
function checkState(ctx, tool, argument) {
  const state = ctx.mcpReq.requestState();
  if (state === undefined) return `${tool}: the retry carried no requestState`;
  if (state.tool !== tool || state.argument !== argument) {
    return `${tool}: requestState for another call: ${JSON.stringify(state)}`;
  }
  return null;
}

async function ask(ctx, tool, argument, request) {
  const requestState = await codec.mint({ tool, argument });
  return inputRequired({ inputRequests: { [tool]: request }, requestState });
}

let handler;

function factory() {
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      capabilities: { logging: {}, tools: { listChanged: true } },
      instructions: INSTRUCTIONS,
      requestState: { verify: codec.verify },
    },
  );

  server.registerTool(
    'echo',
    { description: 'Echo the text back.', inputSchema: schema({ text: { type: 'string' } }) },
    async ({ text: value }) => text(value),
  );

  server.registerTool(
    'slow',
    {
      description: 'Sleep `seconds`, reporting progress in `steps` steps.',
      inputSchema: schema({ seconds: { type: 'number' }, steps: { type: 'integer' } }),
    },
    async ({ seconds, steps }, ctx) => {
      const token = ctx.mcpReq._meta?.progressToken;
      for (let n = 1; n <= steps; n++) {
        await sleep((seconds * 1000) / steps, ctx.mcpReq.signal);
        if (token !== undefined) {
          await ctx.mcpReq.notify({
            method: 'notifications/progress',
            params: { progressToken: token, progress: n, total: steps, message: `step ${n}/${steps}` },
          });
        }
      }
      return text('done');
    },
  );

  server.registerTool(
    'elicit',
    { description: 'Ask the user `question` (form elicitation).', inputSchema: schema({ question: { type: 'string' } }) },
    async ({ question }, ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'elicit');
      if (answer.kind === 'missing') {
        return ask(ctx, 'elicit', question, inputRequired.elicit({
          message: question,
          requestedSchema: {
            type: 'object',
            properties: { answer: { type: 'string', description: 'Your answer' } },
            required: ['answer'],
          },
        }));
      }
      const wrong = checkState(ctx, 'elicit', question);
      if (wrong) return toolError(wrong);
      if (answer.kind !== 'elicit') return toolError(`elicit: a ${answer.kind} response`);
      if (answer.action !== 'accept') return text(`(${answer.action})`);
      return text(answer.content?.answer);
    },
  );

  server.registerTool(
    'sample',
    { description: 'Ask the client model `prompt`.', inputSchema: schema({ prompt: { type: 'string' } }) },
    async ({ prompt }, ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'sample');
      if (answer.kind === 'missing') {
        return ask(ctx, 'sample', prompt, inputRequired.createMessage({
          messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
          maxTokens: 100,
        }));
      }
      const wrong = checkState(ctx, 'sample', prompt);
      if (wrong) return toolError(wrong);
      if (answer.kind !== 'sampling') return toolError(`sample: a ${answer.kind} response`);
      const content = answer.result.content;
      return text(Array.isArray(content) ? content.map((c) => c.text).join('') : content.text);
    },
  );

  server.registerTool(
    'roots',
    { description: "List the client's roots.", inputSchema: schema({}) },
    async (_args, ctx) => {
      const answer = inputResponse(ctx.mcpReq.inputResponses, 'roots');
      if (answer.kind === 'missing') return ask(ctx, 'roots', '', inputRequired.listRoots());
      const wrong = checkState(ctx, 'roots', '');
      if (wrong) return toolError(wrong);
      if (answer.kind !== 'roots') return toolError(`roots: a ${answer.kind} response`);
      return text(answer.roots.map((r) => r.uri).join('\n'));
    },
  );

  server.registerTool(
    'log',
    { description: 'Send `message` as an info log.', inputSchema: schema({ message: { type: 'string' } }) },
    async ({ message }, ctx) => {
      await ctx.mcpReq.log('info', message, 'ts-peer');
      return text('logged');
    },
  );

  server.registerTool(
    'notify_tools_changed',
    { description: 'Publish tools/list_changed to the listen streams.', inputSchema: schema({}) },
    async () => {
      handler.notify.toolsChanged();
      return text('notified');
    },
  );

  server.registerTool(
    'route',
    {
      description: 'Answer with the Mcp-Param-Region header this request carried.',
      inputSchema: schema({
        region: { type: 'string', 'x-mcp-header': 'Region' },
        query: { type: 'string' },
      }),
    },
    async ({ region, query }, ctx) => {
      const header = ctx.http?.req?.headers.get('mcp-param-region') ?? null;
      const result = { region, query, header };
      return { ...text(JSON.stringify(result)), structuredContent: result };
    },
  );

  server.registerPrompt(
    'greet',
    { description: 'Greet someone.', argsSchema: schema({ name: { type: 'string' } }) },
    async ({ name }) => ({
      messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${name}!` } }],
    }),
  );

  server.registerResource('hello', 'text://hello', { mimeType: 'text/plain' }, async (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'hello world' }],
  }));

  return server;
}

handler = createMcpHandler(factory, {
  legacy: 'reject',
  bus,
  onerror: (error) => process.stderr.write(`onerror: ${error?.message ?? error}\n`),
});

// --- the request log ----------------------------------------------------------------------

const entries = [];
const LIMIT = 5000;

function describeBody(entry, raw) {
  entry.body = raw.length <= 1 << 16 ? raw : null;
  let message;
  try {
    message = JSON.parse(raw);
  } catch {
    return;
  }
  if (!message || typeof message !== 'object' || Array.isArray(message)) return;
  entry.rpc_method = typeof message.method === 'string' ? message.method : null;
  entry.rpc_id = message.id ?? null;
  const params = message.params && typeof message.params === 'object' ? message.params : null;
  entry.params = params;
  entry.params_keys = params ? Object.keys(params).sort() : null;
  entry.params_name = params ? (params.name ?? params.uri ?? null) : null;
  entry.meta = params?._meta ?? null;
  // _meta's clientInfo (2026-07-28), else the initialize params' (a legacy handshake)
  entry.client =
    entry.meta?.['io.modelcontextprotocol/clientInfo']?.name ?? params?.clientInfo?.name ?? null;
}

// --- node:http <-> fetch ------------------------------------------------------------------

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function control(req, res, url) {
  if (url.pathname === '/_seen') {
    const client = url.searchParams.get('client');
    const list = client === null ? entries : entries.filter((e) => e.client === client);
    return json(res, 200, { requests: list });
  }
  const atLeast = Number(url.searchParams.get('at_least') ?? 1);
  const timeoutMs = Number(url.searchParams.get('timeout_ms') ?? 10000);
  const client = url.searchParams.get('client');
  const count = () => (client === null ? innerBus.listenerCount : openListens(client));
  if (count() < atLeast) {
    await new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        listenerWaiters.delete(check);
        resolve();
      };
      const check = () => count() >= atLeast && done();
      const timer = setTimeout(done, timeoutMs);
      listenerWaiters.add(check);
    });
  }
  return json(res, count() >= atLeast ? 200 : 408, { listeners: count() });
}

// Listen streams from `client` that are open and acknowledged (the SDK subscribes the stream
// to the bus as it writes the ack, so a change published now reaches it).
function openListens(client) {
  return entries.filter(
    (e) =>
      e.rpc_method === 'subscriptions/listen' &&
      e.client === client &&
      e.state === 'open' &&
      e.response_body.includes('"notifications/subscriptions/acknowledged"'),
  ).length;
}

async function serveMcp(req, res, url) {
  const entry = {
    http: req.method,
    path: url.pathname,
    headers: [],
    body: null,
    rpc_method: null,
    rpc_id: null,
    params_keys: null,
    params: null,
    params_name: null,
    meta: null,
    client: null,
    status: null,
    response_headers: null,
    response_body: '',
    state: 'open',
  };
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    entry.headers.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
  }
  entries.push(entry);
  if (entries.length > LIMIT) entries.shift();

  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) {
      if (entry.state === 'open') entry.state = 'disconnected';
      abort.abort();
      wakeListenerWaiters();
    }
  });
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req);
  if (body !== undefined) describeBody(entry, body.toString('utf8'));
  const headers = new Headers();
  for (const [key, value] of entry.headers) headers.append(key, value);
  const request = new Request(url, { method: req.method, headers, body, signal: abort.signal });

  const response = await handler.fetch(request);
  entry.status = response.status;
  entry.response_headers = [...response.headers.entries()];
  res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
  if (response.body === null) {
    res.end();
    if (entry.state === 'open') entry.state = 'complete';
    return;
  }
  res.flushHeaders();
  const reader = response.body.getReader();
  abort.signal.addEventListener('abort', () => reader.cancel().catch(() => {}));
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (entry.response_body.length < 1 << 20) entry.response_body += decoder.decode(value, { stream: true });
      res.write(value);
      wakeListenerWaiters();
    }
  } catch (error) {
    if (!abort.signal.aborted) process.stderr.write(`response stream: ${error?.message ?? error}\n`);
  }
  if (!res.destroyed) res.end();
  if (entry.state === 'open') entry.state = 'complete';
  wakeListenerWaiters();
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, `http://${req.headers.host ?? '127.0.0.1'}`);
  const route = url.pathname === '/mcp' ? serveMcp : url.pathname.startsWith('/_') ? control : null;
  if (route === null) return json(res, 404, { error: 'not found' });
  route(req, res, url).catch((error) => {
    process.stderr.write(`request failed: ${error?.stack ?? error}\n`);
    if (!res.headersSent) json(res, 500, { error: String(error) });
    else res.destroy();
  });
});

// --- lifecycle ----------------------------------------------------------------------------

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  handler.close().catch(() => {});
  httpServer.closeAllConnections?.();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();

httpServer.listen({ host: '127.0.0.1', port }, () => {
  process.stdout.write(`READY http://127.0.0.1:${httpServer.address().port}\n`);
});
