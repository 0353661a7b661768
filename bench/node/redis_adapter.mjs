// A node-oidc-provider adapter on Redis, so that every process of the peer's cluster (and the mint
// run before the timed window) sees the same codes, refresh tokens and grants.
//
// Each stored model is one Redis hash: field `payload` holds the JSON the provider hands to
// upsert(), field `consumed` is set by consume() (one HSET, so a concurrent redemption sees it at
// once), and the key expires with the model.  Grant-bound models are also listed under their grant
// so that revokeByGrantId() can delete the family, which node-oidc-provider calls on a replayed
// code or a reused refresh token.  Written for bench/login_bench.py; interface from
// node-oidc-provider's documented adapter contract (upsert, find, findByUid, findByUserCode,
// consume, destroy, revokeByGrantId).
import Redis from 'ioredis';

const GRANT_BOUND = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

let client;

export function connect(url) {
  client = new Redis(url, { enableAutoPipelining: true });
  return client;
}

export default function adapterFactory(prefix) {
  return class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${prefix}${this.name}:${id}`;
    }

    static grantKey(grantId) {
      return `${prefix}grant:${grantId}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const tx = client.multi().del(key).hset(key, 'payload', JSON.stringify(payload));
      if (expiresIn) tx.expire(key, expiresIn);
      if (GRANT_BOUND.has(this.name) && payload.grantId) {
        const grantKey = RedisAdapter.grantKey(payload.grantId);
        tx.rpush(grantKey, key);
        // The list lives as long as its longest member.
        if (expiresIn) tx.expire(grantKey, expiresIn, 'NX').expire(grantKey, expiresIn, 'GT');
        else tx.persist(grantKey);
      }
      if (payload.userCode) tx.set(`${prefix}userCode:${payload.userCode}`, id, 'EX', expiresIn);
      if (payload.uid) tx.set(`${prefix}uid:${payload.uid}`, id, 'EX', expiresIn);
      await tx.exec();
    }

    async find(id) {
      const stored = await client.hgetall(this.key(id));
      if (!stored.payload) return undefined;
      const payload = JSON.parse(stored.payload);
      if (stored.consumed) payload.consumed = Number(stored.consumed);
      return payload;
    }

    async findByUid(uid) {
      const id = await client.get(`${prefix}uid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode) {
      const id = await client.get(`${prefix}userCode:${userCode}`);
      return id ? this.find(id) : undefined;
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const grantKey = RedisAdapter.grantKey(grantId);
      const members = await client.lrange(grantKey, 0, -1);
      await client.del(...members, grantKey);
    }
  };
}
