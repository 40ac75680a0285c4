// Node.js `ws` peer for the wsserver benchmark, default options.
//
//   node echo.js PORT [--broadcast] [--deflate]
//
// Echo mode sends every message back with the same kind; broadcast mode
// relays every message to every open client. --deflate: perMessageDeflate
// true (ws's own defaults for it: context takeover, 1 KiB threshold).
'use strict';
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2]);
const broadcast = process.argv.includes('--broadcast');
const perMessageDeflate = process.argv.includes('--deflate');
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate }, () => {
  console.log(`listening on ws://127.0.0.1:${port}`);
});

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    if (!broadcast) {
      ws.send(data, { binary: isBinary });
      return;
    }
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
