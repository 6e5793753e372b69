// Forwards :8000 -> :8002, holding each response DELAY_MS (default 40) to mimic a slower server; GET_DELAY_MS
// (default DELAY_MS) holds the answers to GET instead, reads being quicker than writes upstream too.
import http from 'http';
const delay = Number(process.env.DELAY_MS || 40);
const getDelay = Number(process.env.GET_DELAY_MS ?? delay);
http.createServer((req, res) => {
	const up = http.request({ host: '127.0.0.1', port: 8002, path: req.url, method: req.method, headers: req.headers }, (r) => {
		const chunks = [];
		r.on('data', (c) => chunks.push(c));
		r.on('end', () => setTimeout(() => { res.writeHead(r.statusCode, r.headers); res.end(Buffer.concat(chunks)); },
			req.method === 'GET' ? getDelay : delay));
	});
	up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
	req.pipe(up);
}).listen(8000, '127.0.0.1');
