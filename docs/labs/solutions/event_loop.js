#!/usr/bin/env node
// The answer key for lab 7 (docs/labs/7-event-loop.md) in Node.js: one JavaScript
// thread runs every connection from libuv's loop. A SLEEP is a setTimeout; each
// connection keeps its unfinished input; above LIMIT bytes of unsent answers it
// stops reading (socket.pause) until the client has read ('drain').
// Node also starts helper threads (V8's platform workers, libuv's pool on first
// use): they exist and stay idle, which is what lab 7's grade looks at.
'use strict';
const net = require('net');

const LIMIT = 1 << 20;  // unsent answers (or unread requests) above this: stop reading that connection
const MAX_LINE = 8192;

function answer(line) {  // one request line -> [answer, close after it?, milliseconds to wait first]
  const [word, ...rest] = line.replace(/^[ \t]+/, '').split(' ');
  const arg = rest.join(' ');
  switch (word.toUpperCase()) {
    case 'PING': if (!arg) return ['PONG', false, 0]; break;
    case 'ECHO': return [arg, false, 0];
    case 'SLEEP': if (/^[0-9]+$/.test(arg) && Number(arg) <= 60000) return [`SLEPT ${arg}`, false, Number(arg)]; break;
    case 'QUIT': return ['BYE', true, 0];
  }
  return [`ERR unknown command '${word.slice(0, 32).replace(/[^\x20-\x7e]/g, '?')}'`, false, 0];
}

function serve(socket) {
  let input = '';
  let sleeping = false;  // a SLEEP runs: the requests after it wait for its answer
  let closing = false;   // QUIT answered, or a line too long: end once the output is sent
  let ended = false;     // the client sent all it will send
  socket.setEncoding('latin1');  // one character per byte: ECHO gives back what came

  let out = '';  // this turn's answers: one write for them all, not one per line

  function reply(text) { out += text + '\n'; }

  function work() {  // answers the complete lines, in order, until a SLEEP or LIMIT bytes unsent
    while (!sleeping && !closing && socket.writableLength + out.length < LIMIT) {
      const end = input.indexOf('\n');
      if (end < 0) {
        if (input.length > MAX_LINE) { reply('ERR line too long'); closing = true; }
        break;
      }
      const line = input.slice(0, end).replace(/\r$/, '');
      input = input.slice(end + 1);
      if (!line.trim()) continue;
      const [text, close, ms] = answer(line);
      if (ms > 0) {  // a timer of the loop: meanwhile the thread serves everyone else
        sleeping = true;
        setTimeout(() => { sleeping = false; if (!socket.destroyed) { reply(text); work(); } }, ms);
      } else {
        reply(text);
        closing = close;
      }
    }
    if (out) socket.write(out, 'latin1');
    out = '';
    if (closing || (ended && !sleeping && !input.includes('\n'))) return socket.end();
    // Backpressure: read on only while what waits, in either direction, is under LIMIT.
    if (socket.writableLength < LIMIT && input.length < LIMIT) socket.resume(); else socket.pause();
  }

  socket.on('data', (chunk) => { input += chunk; work(); });
  socket.on('drain', work);
  socket.on('end', () => { ended = true; work(); });
  socket.on('error', () => socket.destroy());  // reset, or gone: that client only (Node ignores SIGPIPE)
}

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 8080;
process.on('SIGTERM', () => process.exit(0));  // the kernel closes every socket
net.createServer({ allowHalfOpen: true }, serve)  // half-open: a client that shut down its side still gets its answers
  .listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
