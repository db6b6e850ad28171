import { bundle, guestFor, ok } from './harness.mjs';
for (const f of ['toggle5.js', 'order5.js', 'toggle4.js', 'order4.js']) {
  const g = await guestFor(await bundle(f));
  const init = ok(await g.init({}));
  const events = f.startsWith('toggle') ? ['TOGGLE'] : ['ADD', 'SUBMIT', 'PACKED', 'HOLD', 'RESUME'];
  let n = 0; const t = performance.now();
  for (let i = 0; i < 400; i++) { let s = init.snapshot; for (const e of events) { s = ok(await g.transition(s, { type: e, price: 1 })).snapshot; n++; } }
  console.log(f, ((performance.now() - t) * 1000 / n).toFixed(1), 'us per transition (node)');
}
