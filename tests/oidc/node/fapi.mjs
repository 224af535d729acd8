// A relying party built on openid-client v6 (OpenID-certified) that
// tests/oidc/test_openid_client_fapi.py drives over real HTTP, one node process
// for the whole module: one JSON request per stdin line, one JSON answer per
// stdout line, {"ok": true, "result": ...} or {"ok": false, "error": {...}}, with
// "wire": what went over the wire meanwhile ({method, path, status, dpop_nonce,
// content_type} each).
//
// Every request carries "rp": {"issuer", "client_id", "redirect_uri",
// "client_key" (private JWK), "dpop_key" and "other_dpop_key" (private JWKs),
// "jarm" and "signed_introspection" (bools)}; an mTLS client (RFC 8705) has
// "client_certificate" and "other_client_certificate" (as the proxy forwards them)
// instead of "client_key". Operations:
//   authorize {how: "par"|"jar"|"jar+par"|"plain", dpop, request_object, assertion}
//                                   -> {url, verifier, state, nonce}
//   code {callback, verifier, state, nonce, dpop}          -> tokens
//   refresh {refresh_token, dpop}                           -> tokens
//   client_credentials {scope, dpop, dpop_claims, assertion, replay}
//                                   -> tokens (replay: {first, second})
//   resource {access_token, url, method, body, dpop, send_to, send_method, replay,
//             certificate: "client"|"other_client"|null (the default: the client's own)}
//                                   -> {status, body}   (replay: {first, second})
//   userinfo {access_token, sub, dpop}                      -> the claims
//   introspect {token}                                      -> the RFC 7662 answer
//   revoke {token}                                          -> {} (RFC 7009)
//   register {metadata, initial_access_token}               -> the registered client_id,
//             token_endpoint_auth_method and registration_client_uri (RFC 7591 with
//             private_key_jwt by rp.client_key; rp.client_id is ignored)
// "dpop" names the key a proof is made with: "main", "other" or null (none).
// "assertion" / "request_object" / "dpop_claims" change the client assertion's,
// the request object's or the DPoP proofs' claims (openid-client's modifyAssertion): {claim: value} set as given,
// {"<claim>_offset": seconds} set to now + seconds.
// "send_to" / "send_method" / "replay" tamper with the request on the wire
// (openid-client's customFetch) after openid-client made its DPoP proof.
import { createInterface } from "node:readline";
import * as client from "openid-client";

const EC = { name: "ECDSA", namedCurve: "P-256" };

async function keyPair(jwk) {
  const { d, ...publicJwk } = jwk;
  const privateKey = await crypto.subtle.importKey("jwk", jwk, EC, false, ["sign"]);
  const publicKey = await crypto.subtle.importKey("jwk", publicJwk, EC, true, ["verify"]);
  return { privateKey, publicKey };
}

// {claim: value} and {"claim_offset": seconds} applied to a JWT's payload.
function modifier(changes) {
  if (!changes) return undefined;
  return {
    [client.modifyAssertion]: (_header, payload) => {
      const now = Math.floor(Date.now() / 1000);
      for (const [name, value] of Object.entries(changes)) {
        if (name.endsWith("_offset")) payload[name.slice(0, -"_offset".length)] = now + value;
        else payload[name] = value;
      }
    },
  };
}

// What went over the wire during the current request line.
let wireLog = [];

// The wire, as the tests tamper with it; every request openid-client sends goes through here.
function wire(tamper, rp) {
  return async (url, options) => {
    const headers = { ...options.headers };
    // RFC 8705 behind the reverse proxy: the TLS client certificate the proxy verified the
    // possession of reaches Hoviyat as X-Client-Certificate; here the wire plays the proxy.
    const certificate =
      tamper.certificate === undefined
        ? rp.client_certificate
        : tamper.certificate && rp[`${tamper.certificate}_certificate`];
    if (certificate) headers["x-client-certificate"] = certificate;
    let { method, body } = options;
    if (tamper.dpop_header && headers.dpop) headers.dpop = tamper.dpop_header;
    if (tamper.send_method) {
      method = tamper.send_method;
      if (method === "GET") body = undefined;
    }
    tamper.sent_dpop = headers.dpop;
    const response = await fetch(tamper.send_to ?? url, { ...options, method, body, headers });
    wireLog.push({
      method,
      path: new URL(tamper.send_to ?? url).pathname,
      status: response.status,
      dpop_nonce: response.headers.has("dpop-nonce"),
      content_type: response.headers.get("content-type"),
    });
    return response;
  };
}

async function configure(rp, { assertion, tamper } = {}) {
  const clientKey = rp.client_key ? await keyPair(rp.client_key) : undefined;
  const execute = [client.allowInsecureRequests]; // the test server is plain HTTP on loopback
  if (rp.jarm) execute.push(client.useJwtResponseMode);
  const config = await client.discovery(
    new URL(rp.issuer),
    rp.client_id,
    {
      id_token_signed_response_alg: "ES256",
      authorization_signed_response_alg: "ES256",
      // RFC 9701: ask for introspection answers as JWTs, which openid-client then verifies.
      ...(rp.signed_introspection ? { introspection_signed_response_alg: "ES256" } : {}),
    },
    rp.client_certificate
      ? client.TlsClientAuth() // RFC 8705 §2.2: the certificate authenticates the client
      : client.PrivateKeyJwt({ key: clientKey.privateKey, kid: rp.client_key.kid }, modifier(assertion)),
    { execute },
  );
  config[client.customFetch] = wire(tamper ?? {}, rp);
  return { config, clientKey };
}

async function dpopOf(config, rp, which, claims) {
  if (!which) return {};
  const jwk = which === "other" ? rp.other_dpop_key : rp.dpop_key;
  return { DPoP: client.getDPoPHandle(config, await keyPair(jwk), modifier(claims)) };
}

function tokens(answer) {
  return {
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    token_type: answer.token_type,
    expires_in: answer.expires_in,
    scope: answer.scope,
    sub: answer.id_token ? answer.claims().sub : undefined,
  };
}

// RFC 9449 §11.1: the DPoP proof of a request that succeeded, sent again with the next one
// (which openid-client gave a fresh proof of its own: the wire swaps it for the old one).
async function twice(tamper, call) {
  const first = await call();
  tamper.dpop_header = tamper.sent_dpop;
  return { first, second: await outcome(call) };
}

const operations = {
  async authorize(rp, { how, dpop = "main", request_object, assertion }) {
    const { config, clientKey } = await configure(rp, { assertion });
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const params = {
      redirect_uri: rp.redirect_uri,
      scope: "openid profile",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    };
    const signingKey = { key: clientKey.privateKey, kid: rp.client_key.kid };
    let url;
    if (how === "plain") {
      url = client.buildAuthorizationUrl(config, params);
    } else if (how === "par") {
      url = await client.buildAuthorizationUrlWithPAR(config, params, await dpopOf(config, rp, dpop));
    } else {
      // RFC 9101: the parameters as a request object signed with the client's key.
      url = await client.buildAuthorizationUrlWithJAR(config, params, signingKey, modifier(request_object));
      if (how === "jar+par") {
        url = await client.buildAuthorizationUrlWithPAR(
          config,
          url.searchParams,
          await dpopOf(config, rp, dpop),
        );
      }
    }
    return { url: url.href, verifier, state, nonce };
  },

  async code(rp, { callback, verifier, state, nonce, dpop = "main" }) {
    const { config } = await configure(rp);
    const checks = { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true };
    return tokens(
      await client.authorizationCodeGrant(config, new URL(callback), checks, undefined, await dpopOf(config, rp, dpop)),
    );
  },

  async refresh(rp, { refresh_token, dpop = "main" }) {
    const { config } = await configure(rp);
    return tokens(await client.refreshTokenGrant(config, refresh_token, undefined, await dpopOf(config, rp, dpop)));
  },

  async client_credentials(rp, { scope, dpop = "main", dpop_claims, assertion, replay }) {
    const tamper = {};
    const { config } = await configure(rp, { assertion, tamper });
    const params = scope ? { scope } : {};
    const options = await dpopOf(config, rp, dpop, dpop_claims);
    const call = async () => tokens(await client.clientCredentialsGrant(config, params, options));
    return replay ? await twice(tamper, call) : await call();
  },

  async resource(rp, { access_token, url, method = "GET", body, dpop = "main", send_to, send_method, replay, certificate }) {
    const tamper = { send_to, send_method, certificate };
    const { config } = await configure(rp, { tamper });
    const options = await dpopOf(config, rp, dpop);
    const call = async () => {
      const headers = new Headers(body ? { "content-type": "application/json" } : {});
      const payload = body ? JSON.stringify(body) : undefined;
      const response = await client.fetchProtectedResource(config, access_token, new URL(url), method, payload, headers, options);
      return { status: response.status, body: await response.json() };
    };
    return replay ? await twice(tamper, call) : await call();
  },

  async userinfo(rp, { access_token, sub, dpop = "main" }) {
    const { config } = await configure(rp);
    return await client.fetchUserInfo(config, access_token, sub, await dpopOf(config, rp, dpop));
  },

  async introspect(rp, { token }) {
    const { config } = await configure(rp);
    return await client.tokenIntrospection(config, token);
  },

  async revoke(rp, { token }) {
    const { config } = await configure(rp);
    await client.tokenRevocation(config, token);
    return {};
  },

  async register(rp, { metadata, initial_access_token }) {
    const clientKey = await keyPair(rp.client_key);
    const config = await client.dynamicClientRegistration(
      new URL(rp.issuer),
      metadata,
      client.PrivateKeyJwt({ key: clientKey.privateKey, kid: rp.client_key.kid }),
      {
        initialAccessToken: initial_access_token,
        execute: [client.allowInsecureRequests],
        [client.customFetch]: wire({}, rp),
      },
    );
    const registered = config.clientMetadata();
    return {
      client_id: registered.client_id,
      token_endpoint_auth_method: registered.token_endpoint_auth_method,
      registration_client_uri: registered.registration_client_uri,
    };
  },
};

function described(error) {
  const challenges = error.code === "OAUTH_WWW_AUTHENTICATE_CHALLENGE" ? error.cause : undefined;
  return {
    name: error.name,
    code: error.code,
    message: error.message,
    error: error.error,
    error_description: error.error_description,
    status: error.status,
    challenges,
  };
}

async function outcome(action) {
  try {
    return { ok: true, result: await action() };
  } catch (error) {
    return { ok: false, error: described(error) };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { op, rp, ...args } = JSON.parse(line);
  const operation = operations[op];
  wireLog = [];
  const answer = operation
    ? await outcome(() => operation(rp, args))
    : { ok: false, error: { name: "UnknownOperation", message: op } };
  process.stdout.write(JSON.stringify({ ...answer, wire: wireLog }) + "\n");
}
