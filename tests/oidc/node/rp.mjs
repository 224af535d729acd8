// A relying party built on openid-client v6 (OpenID-certified), driven by
// tests/oidc/test_openid_client_interop.py in two steps over real HTTP:
//   node rp.mjs start  <settings.json>                 -> {"url", "verifier", "state", "nonce"}
//   node rp.mjs finish <settings.json> <callback> <verifier> <state> <nonce>
//                                                      -> {"token_type", "sub", "userinfo", ...}
// settings.json: {"issuer", "client_id", "redirect_uri", "client_key" (private JWK),
//                 "dpop_key" (private JWK), "jarm" (bool)}
import { readFileSync } from "node:fs";
import * as client from "openid-client";

const [command, settingsFile, ...rest] = process.argv.slice(2);
const settings = JSON.parse(readFileSync(settingsFile, "utf8"));

async function keyPair(jwk) {
  const alg = { name: "ECDSA", namedCurve: "P-256" };
  const { d, ...publicJwk } = jwk;
  const privateKey = await crypto.subtle.importKey("jwk", jwk, alg, false, ["sign"]);
  const publicKey = await crypto.subtle.importKey("jwk", publicJwk, alg, true, ["verify"]);
  return { privateKey, publicKey };
}

async function configuration() {
  const clientKey = await keyPair(settings.client_key);
  const execute = [client.allowInsecureRequests]; // the test server is plain HTTP on loopback
  if (settings.jarm) execute.push(client.useJwtResponseMode);
  const config = await client.discovery(
    new URL(settings.issuer),
    settings.client_id,
    { id_token_signed_response_alg: "ES256", authorization_signed_response_alg: "ES256" },
    client.PrivateKeyJwt({ key: clientKey.privateKey, kid: settings.client_key.kid }),
    { execute },
  );
  const dpop = client.getDPoPHandle(config, await keyPair(settings.dpop_key));
  return { config, dpop };
}

async function start() {
  const { config, dpop } = await configuration();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(
    config,
    {
      redirect_uri: settings.redirect_uri,
      scope: "openid profile",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    },
    { DPoP: dpop },
  );
  return { url: url.href, verifier, state, nonce };
}

async function finish(callback, verifier, state, nonce) {
  const { config, dpop } = await configuration();
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(callback),
    { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
    undefined,
    { DPoP: dpop },
  );
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP: dpop });
  return {
    token_type: tokens.token_type,
    sub: claims.sub,
    acr: claims.acr,
    userinfo,
    access_token: tokens.access_token,
  };
}

try {
  const result = command === "start" ? await start() : await finish(...rest);
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stderr.write(`${error.name}: ${error.message} ${JSON.stringify(error.cause ?? null)}\n`);
  process.exit(1);
}
