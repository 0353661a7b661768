// Node's `jose` as an independent oracle for sealring's JOSE tests.
// stdin: a JSON array of tasks; stdout: a JSON array of results, one per task.
//   {"op": "sign", "alg", "jwk" (private), "claims", "header"}       -> {"token"}
//   {"op": "verify", "token", "jwks" ({keys: [...]}), "algorithms"}  -> {"ok", "payload" | "error"}
import { SignJWT, importJWK, jwtVerify, createLocalJWKSet } from 'jose';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const tasks = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const results = [];
for (const task of tasks) {
  try {
    if (task.op === 'sign') {
      const key = await importJWK(task.jwk, task.alg);
      const token = await new SignJWT(task.claims)
        .setProtectedHeader({ ...task.header, alg: task.alg })
        .sign(key);
      results.push({ token });
    } else if (task.op === 'verify') {
      const { payload, protectedHeader } = await jwtVerify(
        task.token,
        createLocalJWKSet(task.jwks),
        { algorithms: task.algorithms, currentDate: new Date(task.now * 1000) },
      );
      results.push({ ok: true, payload, header: protectedHeader });
    } else {
      results.push({ ok: false, error: `unknown op ${task.op}` });
    }
  } catch (err) {
    results.push({ ok: false, error: err.code || String(err) });
  }
}
process.stdout.write(JSON.stringify(results));
