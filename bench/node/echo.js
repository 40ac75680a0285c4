// Node.js `ws` peer for the wsserver benchmark, default options.
//
//   node echo.js PORT [--broadcast] [--deflate] [--tls CERT KEY]
//
// Echo mode sends every message back with the same kind; broadcast mode
// relays every message to every open client. --deflate: perMessageDeflate
// true (ws's own defaults for it: context takeover, 1 KiB threshold).
// --tls CERT KEY: wss://, ws on an https.createServer with the PEM files
// (Node's TLS defaults).
'use strict';
const fs = require('fs');
const https = require('https');
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2]);
const broadcast = process.argv.includes('--broadcast');
const perMessageDeflate = process.argv.includes('--deflate');
const tls = process.argv.indexOf('--tls');
let wss;
if (tls > 0) {
  const [cert, key] = process.argv.slice(tls + 1, tls + 3).map((f) => fs.readFileSync(f));
  const server = https.createServer({ cert, key });
  wss = new WebSocketServer({ server, perMessageDeflate });
  server.listen(port, '127.0.0.1', () => console.log(`listening on wss://127.0.0.1:${port}`));
} else {
  wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate }, () => {
    console.log(`listening on ws://127.0.0.1:${port}`);
  });
}

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
