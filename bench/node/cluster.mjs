// The benchmark peers' process model: a node:cluster primary that makes one ES256 signing key for
// the whole cluster (one issuer must have one key set), forks `workers` processes that each get
// the key as PEER_JWK and listen on the same port, and stops them all on SIGTERM.  A worker that
// dies while not stopping ends the primary with an error, so a broken peer fails the run.
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';

export const isPrimary = cluster.isPrimary;

export function startPrimary(workers) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };
  for (let i = 0; i < workers; i += 1) cluster.fork({ PEER_JWK: JSON.stringify(jwk) });
  let stopping = false;
  process.on('SIGTERM', () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
  });
  cluster.on('exit', (worker, code) => {
    if (stopping) {
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
      return;
    }
    console.error(`peer worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  });
}

// In a worker: the cluster's signing key, and exit when the primary goes.
export function workerKey() {
  process.on('disconnect', () => process.exit(0));
  return JSON.parse(process.env.PEER_JWK);
}
