// client.test.js - node-vault (the npm client) against a running, unsealed
// coffer server: VAULT_ADDR and VAULT_TOKEN (root) come from
// ../test_node_vault.py, which starts the real binary. Every call goes
// through node-vault's own methods, and responses that node-vault declares a
// schema for are checked against that schema, so a shape node-vault does not
// expect fails here.
'use strict';

const { test, describe, before } = require('node:test');
const assert = require('node:assert/strict');
const tv4 = require('tv4');
const commands = require('node-vault/src/commands.js');
const nodeVault = require('node-vault');

const ADDR = process.env.VAULT_ADDR;
const ROOT = process.env.VAULT_TOKEN;

// vault(null): a client with no token at all (node-vault would otherwise
// fall back to $VAULT_TOKEN)
function vault(token, extra = {}) {
    const c = nodeVault({ apiVersion: 'v1', endpoint: ADDR, token, ...extra });
    if (token === null) c.token = undefined;
    return c;
}

// node-vault's tokenCreate* switch the calling client to the new token
// (tokenSource in its command table): mint tokens on a throwaway root client.
function mint(args, command = 'tokenCreate') {
    return vault(ROOT)[command](args);
}

// node-vault's declared response schema for a command, enforced
// (Vault, and so Coffer, send "metadata": null in an auth block when the
// token has no meta, which node-vault's schema would reject: tokens checked
// with conforms() below are created with meta.)
function conforms(command, body) {
    const schema = commands[command].schema && commands[command].schema.res;
    assert.ok(schema, `node-vault declares no response schema for ${command}`);
    const ok = tv4.validate(body, schema);
    assert.ok(ok, `${command}: ${tv4.error && tv4.error.message} at ${tv4.error && tv4.error.dataPath}`);
}

async function rejects(promise, statusCode, messagePart) {
    let err;
    try {
        await promise;
    } catch (e) {
        err = e;
    }
    assert.ok(err, `expected an error with status ${statusCode}`);
    assert.ok(err.response, `error has no response: ${err}`);
    assert.equal(err.response.statusCode, statusCode, JSON.stringify(err.response.body));
    // {"errors":[...]}; only a KV v2 read of a deleted version answers its
    // 404 with the envelope instead, as Vault does
    if (!err.response.body.data) {
        assert.ok(Array.isArray(err.response.body.errors), 'errors array in the body');
    }
    if (messagePart !== undefined) assert.match(err.message, messagePart);
    return err;
}

// true when the server has the auth plugin (enables it at its default path)
async function hasAuth(v, type) {
    try {
        await v.enableAuth({ mount_point: type, type, description: '' });
        return true;
    } catch (e) {
        if (e.response && e.response.statusCode === 400
            && /plugin not found|unknown|not supported/.test(e.message)) return false;
        throw e;
    }
}

describe('node-vault against coffer', { skip: !ADDR || !ROOT ? 'VAULT_ADDR/VAULT_TOKEN unset' : false }, () => {
    const v = vault(ROOT);

    before(async () => {
        // a dev server already has secret/ (kv v2)
        const have = (await v.mounts()).data;
        if (!have['secret/']) await v.mount({ mount_point: 'secret', type: 'kv', options: { version: '2' } });
        if (!have['kv1/']) await v.mount({ mount_point: 'kv1', type: 'kv' });
    });

    test('status, health, leader, initialized', async () => {
        const st = await v.status();
        conforms('status', st);
        assert.equal(st.sealed, false);
        assert.equal(st.type, 'shamir');
        const h = await v.health();
        conforms('health', h);
        assert.equal(h.initialized, true);
        assert.equal(h.sealed, false);
        assert.equal(h.standby, false);
        const h2 = await v.health({ standbyok: true, activecode: 200 });
        assert.equal(h2.sealed, false);
        const l = await v.leader();
        conforms('leader', l);
        assert.equal(l.ha_enabled, false);
        assert.deepEqual(await v.initialized(), { initialized: true });
    });

    test('mounts: enable, list, tune, remount, disable', async () => {
        await v.mount({ mount_point: 'team-a', type: 'kv', description: 'team A',
            config: { default_lease_ttl: '1h' }, options: { version: '2' } });
        let mounts = await v.mounts();
        const m = mounts.data['team-a/'];
        assert.ok(m, 'team-a/ listed');
        assert.ok(mounts['team-a/'], 'sys/mounts data is also at the top level');
        assert.equal(m.type, 'kv');
        assert.equal(m.description, 'team A');
        assert.deepEqual(m.options, { version: '2' });
        assert.equal(m.config.default_lease_ttl, 3600);
        assert.match(m.accessor, /^kv_/);
        assert.ok(mounts.data['cubbyhole/']);
        await v.write('sys/mounts/team-a/tune', { max_lease_ttl: '48h' });
        const tune = await v.read('sys/mounts/team-a/tune');
        assert.equal(tune.data.max_lease_ttl, 172800);
        assert.equal(tune.data.default_lease_ttl, 3600);
        await v.remount({ from: 'team-a', to: 'team-b' });
        mounts = await v.mounts();
        assert.ok(!mounts.data['team-a/']);
        assert.ok(mounts.data['team-b/']);
        await v.unmount({ mount_point: 'team-b' });
        assert.ok(!(await v.mounts()).data['team-b/']);
        await rejects(v.mount({ mount_point: 'secret', type: 'kv' }), 400);
        await rejects(v.mount({ mount_point: 'x1', type: 'no-such-engine' }), 400);
    });

    test('auth methods: list, and token cannot be disabled', async () => {
        const auths = await v.auths();
        assert.equal(auths.data['token/'].type, 'token');
        assert.ok(auths['token/'], 'sys/auth data is also at the top level');
        assert.match(auths.data['token/'].accessor, /^auth_token_/);
        let failed = false;
        try {
            await v.disableAuth({ mount_point: 'token' });
        } catch (e) {
            failed = true;
            assert.ok([400, 403].includes(e.response.statusCode));
        }
        assert.ok(failed, 'disabling token auth must fail');
    });

    test('policies: add, get, list, remove', async () => {
        const rules = 'path "secret/data/node/*" {\n  capabilities = ["read", "list"]\n}\n';
        await v.addPolicy({ name: 'node-read', rules });
        const got = await v.getPolicy({ name: 'node-read' });
        assert.equal(got.rules, rules);
        assert.equal(got.data.rules, rules);
        assert.equal(got.name, 'node-read');
        const list = await v.policies();
        assert.ok(list.policies.includes('node-read'));
        assert.ok(list.data.policies.includes('root'));
        assert.ok(list.data.policies.includes('default'));
        await v.addPolicy({ name: 'tmp-pol', policy: 'path "x/*" { capabilities = ["read"] }' });
        await v.removePolicy({ name: 'tmp-pol' });
        await rejects(v.getPolicy({ name: 'tmp-pol' }), 404);
        await rejects(v.addPolicy({ name: 'broken', rules: 'path "x" { capabilities = [' }), 400);
    });

    test('tokens: create, lookup, renew, revoke, orphans, accessors', async () => {
        await v.addPolicy({ name: 'tok-pol', rules: 'path "secret/data/t/*" { capabilities = ["read"] }\n'
            + 'path "auth/token/create" { capabilities = ["update"] }' });
        const created = await mint({ policies: ['tok-pol'], ttl: '1h', meta: { team: 'a' },
            display_name: 'node', renewable: true });
        conforms('tokenCreate', created);
        const a = created.auth;
        assert.deepEqual(a.policies, ['default', 'tok-pol']);
        assert.deepEqual(a.metadata, { team: 'a' });
        assert.equal(a.lease_duration, 3600);
        assert.equal(a.renewable, true);
        assert.equal(a.token_type, 'service');

        const me = vault(a.client_token);
        const self = await me.tokenLookupSelf();
        conforms('tokenLookupSelf', self);
        assert.equal(self.data.id, a.client_token);
        assert.equal(self.data.accessor, a.accessor);
        assert.equal(self.data.display_name, 'token-node');
        assert.deepEqual(self.data.meta, { team: 'a' });
        assert.ok(self.data.ttl <= 3600 && self.data.ttl > 3500);

        const looked = await v.tokenLookup({ token: a.client_token });
        conforms('tokenLookup', looked);
        assert.equal(looked.data.accessor, a.accessor);
        const byAcc = await v.tokenLookupAccessor({ accessor: a.accessor });
        conforms('tokenLookupAccessor', byAcc);
        assert.equal(byAcc.data.id, '');
        assert.equal(byAcc.data.display_name, 'token-node');

        const ren = await me.tokenRenewSelf({ increment: '30m' });
        conforms('tokenRenewSelf', ren);
        assert.equal(ren.auth.client_token, a.client_token);
        assert.ok(ren.auth.lease_duration > 0 && ren.auth.lease_duration <= 1800);
        const ren2 = await vault(ROOT).tokenRenew({ token: a.client_token, increment: 600 });
        conforms('tokenRenew', ren2);
        assert.equal(ren2.auth.lease_duration, 600);

        const child = (await vault(a.client_token).tokenCreate({ policies: ['tok-pol'], ttl: '10m' })).auth.client_token;
        const orphan = await mint({ policies: ['tok-pol'], ttl: '10m', meta: { kind: 'orphan' } },
            'tokenCreateOrphan');
        conforms('tokenCreateOrphan', orphan);
        assert.equal(orphan.auth.orphan, true);

        const accs = await v.tokenAccessors();
        conforms('tokenAccessors', accs);
        assert.ok(accs.data.keys.includes(a.accessor));

        await v.tokenRevoke({ token: a.client_token });
        await rejects(me.tokenLookupSelf(), 403, /permission denied/);
        await rejects(vault(child).tokenLookupSelf(), 403);
        const o = vault(orphan.auth.client_token);
        assert.equal((await o.tokenLookupSelf()).data.orphan, true);
        await v.tokenRevokeAccessor({ accessor: orphan.auth.accessor });
        await rejects(o.tokenLookupSelf(), 403);

        const selfish = vault((await mint({ ttl: '5m' })).auth.client_token);
        await selfish.tokenRevokeSelf();
        await rejects(selfish.tokenLookupSelf(), 403);

        // revoke-orphan keeps the children, as orphans
        const parent = (await mint({ policies: ['tok-pol'], ttl: '10m' })).auth.client_token;
        const kid = (await vault(parent).tokenCreate({ policies: ['tok-pol'], ttl: '5m' })).auth.client_token;
        await v.tokenRevokeOrphan({ token: parent });
        assert.equal((await vault(kid).tokenLookupSelf()).data.orphan, true);
    });

    test('token roles', async () => {
        await v.addTokenRole({ role_name: 'ci', allowed_policies: 'tok-pol', orphan: true,
            explicit_max_ttl: 7200, renewable: true });
        const role = await v.getTokenRole({ role_name: 'ci' });
        assert.equal(role.data.orphan, true);
        assert.deepEqual(role.data.allowed_policies, ['tok-pol']);
        const roles = await v.tokenRoles();
        conforms('tokenRoles', roles);
        assert.ok(roles.data.keys.includes('ci'));
        const t = await mint({ role_name: 'ci', policies: ['tok-pol'], meta: { via: 'role' } },
            'tokenCreateRole');
        conforms('tokenCreateRole', t);
        assert.equal(t.auth.orphan, true);
        await v.removeTokenRole({ role_name: 'ci' });
        await rejects(v.getTokenRole({ role_name: 'ci' }), 404);
    });

    test('kv v1: write, read, list, delete', async () => {
        await v.write('kv1/svc/api', { key: 'abc', n: 3 });
        const r = await v.read('kv1/svc/api');
        assert.deepEqual(r.data, { key: 'abc', n: 3 });
        assert.equal(r.lease_duration, 2764800);
        await v.write('kv1/svc/web', { k: 'v' });
        assert.deepEqual((await v.list('kv1/svc')).data.keys, ['api', 'web']);
        assert.deepEqual((await v.list('kv1/svc/')).data.keys, ['api', 'web']);
        assert.deepEqual((await v.list('kv1/')).data.keys, ['svc/']);
        // GET ?list=1 for proxies that drop custom verbs
        const plain = vault(ROOT, { noCustomHTTPVerbs: true });
        assert.deepEqual((await plain.list('kv1/svc')).data.keys, ['api', 'web']);
        await v.delete('kv1/svc/api');
        const err = await rejects(v.read('kv1/svc/api'), 404);
        assert.deepEqual(err.response.body.errors, []);
        await rejects(v.list('kv1/nothing'), 404);
    });

    test('kv v2: write with cas, read versions, patch, list, delete, destroy, metadata', async () => {
        const w = await v.write('secret/data/app/db', { options: { cas: 0 }, data: { user: 'u', password: 'p1' } });
        assert.equal(w.data.version, 1);
        assert.equal(w.data.destroyed, false);
        assert.equal(w.data.deletion_time, '');
        await rejects(v.write('secret/data/app/db', { options: { cas: 0 }, data: { password: 'x' } }), 400,
            /check-and-set/);
        await v.write('secret/data/app/db', { options: { cas: 1 }, data: { user: 'u', password: 'p2' } });
        let r = await v.read('secret/data/app/db');
        assert.deepEqual(r.data.data, { user: 'u', password: 'p2' });
        assert.equal(r.data.metadata.version, 2);
        assert.equal((await v.read('secret/data/app/db?version=1')).data.data.password, 'p1');

        // node-vault's update() is an HTTP PATCH with merge-patch+json
        const p = await v.update('secret/data/app/db', { data: { password: 'p3', port: 5432 } });
        assert.equal(p.data.version, 3);
        r = await v.read('secret/data/app/db');
        assert.deepEqual(r.data.data, { user: 'u', password: 'p3', port: 5432 });

        await v.write('secret/data/app/nested/x', { data: { a: 1 } });
        assert.deepEqual((await v.list('secret/metadata/app')).data.keys, ['db', 'nested/']);

        await v.delete('secret/data/app/db');
        const gone = await rejects(v.read('secret/data/app/db'), 404);
        // Vault answers a deleted version with 404 *and* its metadata
        assert.notEqual(gone.response.body.data.metadata.deletion_time, '');
        await v.write('secret/undelete/app/db', { versions: [3] });
        assert.equal((await v.read('secret/data/app/db')).data.data.password, 'p3');
        await v.destroySecretVersions({ path: 'app/db', versions: [1] });
        const meta = await v.read('secret/metadata/app/db');
        assert.equal(meta.data.versions['1'].destroyed, true);
        assert.equal(meta.data.current_version, 3);
        await v.write('secret/metadata/app/db', { max_versions: 4, custom_metadata: { owner: 'a' } });
        assert.deepEqual((await v.read('secret/metadata/app/db')).data.custom_metadata, { owner: 'a' });
        await v.delete('secret/metadata/app/db');
        await rejects(v.read('secret/metadata/app/db'), 404);

        await v.write('secret/config', { max_versions: 7 });
        assert.equal((await v.read('secret/config')).data.max_versions, 7);
    });

    test('cubbyhole is per token', async () => {
        const a = vault((await mint({ ttl: '1h' })).auth.client_token);
        const b = vault((await mint({ ttl: '1h' })).auth.client_token);
        await a.write('cubbyhole/note', { value: 'only a' });
        assert.deepEqual((await a.read('cubbyhole/note')).data, { value: 'only a' });
        await rejects(b.read('cubbyhole/note'), 404);
        assert.deepEqual((await a.list('cubbyhole')).data.keys, ['note']);
        await a.delete('cubbyhole/note');
        await rejects(a.read('cubbyhole/note'), 404);
    });

    test('errors carry statusCode and the server message', async () => {
        await v.addPolicy({ name: 'ro', rules: 'path "secret/data/ro/*" { capabilities = ["read"] }' });
        await v.write('secret/data/ro/x', { data: { a: 'b' } });
        const ro = vault((await mint({ policies: ['ro'], ttl: '1h' })).auth.client_token);
        assert.deepEqual((await ro.read('secret/data/ro/x')).data.data, { a: 'b' });
        const e = await rejects(ro.write('secret/data/ro/x', { data: { a: 'c' } }), 403);
        assert.equal(e.message, 'permission denied');
        await rejects(ro.mounts(), 403, /permission denied/);
        await rejects(vault('s.notarealtoken0000000000000').read('secret/data/ro/x'), 403);
        await rejects(vault(null).mounts(), 403);
        await rejects(v.read('secret/data/does/not/exist'), 404);
        await rejects(v.write('no-such-mount/x', { a: 1 }), 404);
        await rejects(v.write('secret/data/bad', { data: 'not-an-object' }), 400);
        await rejects(v.tokenCreate({ ttl: 'not-a-duration' }), 400);
    });

    test('rotate and key status', async () => {
        const before = await v.read('sys/key-status');
        await v.rotate();
        const after = await v.read('sys/key-status');
        assert.equal(after.term, before.term + 1);
        assert.equal(after.data.term, before.data.term + 1);
    });

    test('sys/capabilities-self', async () => {
        const r = await v.write('sys/capabilities-self', { paths: ['secret/data/x'] });
        assert.deepEqual(r.capabilities, ['root']);
        assert.deepEqual(r.data['secret/data/x'], ['root']);
    });

    test('audit devices (when the server has them)', async (t) => {
        const path = `${process.env.COFFER_TEST_DIR || '/tmp'}/node-audit-${process.pid}.log`;
        try {
            await v.enableAudit({ name: 'nodefile', type: 'file', options: { file_path: path } });
        } catch (e) {
            if (e.response && (e.response.statusCode === 404 || /unknown|not found|not supported/.test(e.message))) {
                t.skip('server has no audit devices');
                return;
            }
            throw e;
        }
        const list = await v.audits();
        assert.equal(list.data['nodefile/'].type, 'file');
        await v.disableAudit({ name: 'nodefile' });
    });

    test('userpass login (when the server has it)', async (t) => {
        if (!(await hasAuth(v, 'userpass'))) {
            t.skip('server has no userpass auth method');
            return;
        }
        await v.write('auth/userpass/users/alice', { password: 's3cret-pw', policies: 'ro' });
        const u = vault(null);
        const login = await u.userpassLogin({ username: 'alice', password: 's3cret-pw' });
        conforms('userpassLogin', login);
        assert.equal(u.token, login.auth.client_token);
        assert.ok(login.auth.policies.includes('ro'));
        await u.tokenLookupSelf();
        await rejects(vault(null).userpassLogin({ username: 'alice', password: 'nope' }), 400);
    });

    test('approle login (when the server has it)', async (t) => {
        if (!(await hasAuth(v, 'approle'))) {
            t.skip('server has no approle auth method');
            return;
        }
        await v.addApproleRole({ role_name: 'ci', policies: 'ro', token_ttl: 600 });
        // (node-vault's approle schema types wrap_info/warnings as strings;
        // Vault sends null there, so it is not enforced for approle)
        const rid = await v.getApproleRoleId({ role_name: 'ci' });
        assert.equal(typeof rid.data.role_id, 'string');
        const sid = await v.getApproleRoleSecret({ role_name: 'ci' });
        assert.ok(sid.data.secret_id);
        const a = vault(null);
        const login = await a.approleLogin({ role_id: rid.data.role_id, secret_id: sid.data.secret_id });
        assert.equal(typeof login.auth.client_token, 'string');
        assert.equal(a.token, login.auth.client_token);
        assert.equal(login.auth.lease_duration, 600);
        const roles = await v.approleRoles();
        assert.ok(roles.data.keys.includes('ci'));
        await rejects(vault(null).approleLogin({ role_id: rid.data.role_id, secret_id: 'bad' }), 400);
    });
});
