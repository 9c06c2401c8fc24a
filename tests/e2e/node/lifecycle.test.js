// lifecycle.test.js - node-vault initialising, unsealing, sealing and
// generating a root token on a fresh (uninitialised, file-storage) coffer
// server whose address ../test_node_vault.py passes in COFFER_FRESH_ADDR.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const tv4 = require('tv4');
const commands = require('node-vault/src/commands.js');
const nodeVault = require('node-vault');

const ADDR = process.env.COFFER_FRESH_ADDR;

function conforms(command, body) {
    assert.ok(tv4.validate(body, commands[command].schema.res),
        `${command}: ${tv4.error && tv4.error.message} at ${tv4.error && tv4.error.dataPath}`);
}

test('init, unseal, seal, generate-root', { skip: !ADDR ? 'COFFER_FRESH_ADDR unset' : false }, async () => {
    const v = nodeVault({ apiVersion: 'v1', endpoint: ADDR });
    assert.deepEqual(await v.initialized(), { initialized: false });
    // node-vault hands sys/health bodies back whatever the status (501 here)
    const h = await v.health();
    assert.equal(h.initialized, false);

    const init = await v.init({ secret_shares: 3, secret_threshold: 2 });
    conforms('init', init);
    assert.equal(init.keys.length, 3);
    assert.equal(init.keys_base64.length, 3);
    assert.deepEqual(await v.initialized(), { initialized: true });
    let err;
    try {
        await v.init({ secret_shares: 1, secret_threshold: 1 });
    } catch (e) {
        err = e;
    }
    assert.equal(err.response.statusCode, 400);
    assert.match(err.message, /already initialized/);

    let st = await v.status();
    conforms('status', st);
    assert.deepEqual([st.sealed, st.t, st.n, st.progress], [true, 2, 3, 0]);
    const sealedHealth = await v.health();
    assert.equal(sealedHealth.sealed, true);

    // a sealed server refuses ordinary requests with 503
    v.token = init.root_token;
    try {
        await v.mounts();
        assert.fail('mounts while sealed');
    } catch (e) {
        assert.equal(e.response.statusCode, 503);
        assert.match(e.message, /sealed/);
    }

    st = await v.unseal({ key: init.keys[0] });
    conforms('unseal', st);
    assert.equal(st.progress, 1);
    st = await v.unseal({ reset: true });
    assert.equal(st.progress, 0);
    await v.unseal({ key: init.keys[1] });
    st = await v.unseal({ key: init.keys[2] });
    assert.equal(st.sealed, false);
    const health = await v.health();
    conforms('health', health);
    assert.equal(health.sealed, false);
    assert.ok((await v.mounts()).data['sys/']);

    // generate a new root token with the unseal keys and an OTP
    const otpLen = 28;
    const gr = await v.generateRootInit({});
    conforms('generateRootInit', gr);
    assert.equal(gr.started, true);
    assert.equal(gr.required, 2);
    const otp = gr.otp;
    if (otp) {
        assert.ok(otp.length >= otpLen - 4, `otp length ${otp.length}`);
    }
    await v.generateRootUpdate({ key: init.keys[0], nonce: gr.nonce });
    const done = await v.generateRootUpdate({ key: init.keys[1], nonce: gr.nonce });
    conforms('generateRootUpdate', done);
    assert.equal(done.complete, true);
    assert.ok(done.encoded_token || done.encoded_root_token);
    // decode: base64 of token XOR otp
    const enc = Buffer.from(done.encoded_token || done.encoded_root_token, 'base64');
    const pad = Buffer.from(otp, 'utf8');
    const tok = Buffer.alloc(enc.length);
    for (let i = 0; i < enc.length; i++) tok[i] = enc[i] ^ pad[i];
    const fresh = nodeVault({ apiVersion: 'v1', endpoint: ADDR, token: tok.toString('utf8') });
    const self = await fresh.tokenLookupSelf();
    assert.deepEqual(self.data.policies, ['root']);
    // and a cancelled attempt leaves nothing behind
    await v.generateRootInit({});
    await v.generateRootCancel();
    assert.equal((await v.read('sys/generate-root/attempt')).started, false);

    await v.seal();
    assert.equal((await v.status()).sealed, true);
    await v.unseal({ key: init.keys[0] });
    st = await v.unseal({ key: init.keys[2] });
    assert.equal(st.sealed, false);
});
