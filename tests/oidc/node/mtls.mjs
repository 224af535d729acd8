// openid-client v6 (OpenID-certified) as a back-office client with mutual TLS
// (RFC 8705), driven by tests/oidc/test_openid_client_mtls.py through a real nginx
// in front of hoviyat serve. Reads one JSON file (argv[2]):
//   {issuer, client_id, cert, key, resource: {url, body}, resource_without_cert}
// and prints one JSON line: {ok: true, tokens, resource: {status, body}, bare: {status}}
// or {ok: false, error: {name, message, code, error, status}}.
// TLS is node's own (https.request with the client's certificate and key) behind
// openid-client's customFetch: the key never leaves this process, and nginx is
// who asks for the certificate and proves its possession.
import https from "node:https";
import { readFileSync } from "node:fs";
import * as client from "openid-client";

const settings = JSON.parse(readFileSync(process.argv[2], "utf8"));

// A fetch over node's TLS, with or without the client certificate.
function tlsFetch(withCertificate) {
  const identity = withCertificate
    ? { cert: readFileSync(settings.cert), key: readFileSync(settings.key) }
    : {};
  return (url, options = {}) =>
    new Promise((resolve, reject) => {
      const headers = Object.fromEntries(new Headers(options.headers ?? {}).entries());
      let body = options.body;
      if (body instanceof URLSearchParams) body = body.toString();
      const request = https.request(
        new URL(url),
        {
          method: options.method ?? "GET",
          headers,
          ...identity,
          // nginx's certificate is the test's throwaway; the client's is what is tested.
          rejectUnauthorized: false,
        },
        (response) => {
          const chunks = [];
          response.on("data", (chunk) => chunks.push(chunk));
          response.on("end", () => {
            const answer = new Headers();
            for (const [name, value] of Object.entries(response.headers)) {
              for (const one of [].concat(value)) answer.append(name, one);
            }
            const status = response.statusCode;
            const payload = [204, 304].includes(status) ? null : Buffer.concat(chunks);
            resolve(new Response(payload, { status, headers: answer }));
          });
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      if (body !== undefined && body !== null) request.write(body);
      request.end();
    });
}

try {
  const options = { [client.customFetch]: tlsFetch(true) };
  const config = await client.discovery(
    new URL(settings.issuer),
    settings.client_id,
    {},
    client.TlsClientAuth(),
    options,
  );
  config[client.customFetch] = tlsFetch(true);
  const tokens = await client.clientCredentialsGrant(config);
  const result = { ok: true, tokens: { ...tokens } };
  if (settings.resource) {
    const call = async () =>
      client.fetchProtectedResource(
        config,
        tokens.access_token,
        new URL(settings.resource.url),
        "POST",
        JSON.stringify(settings.resource.body),
        new Headers({ "content-type": "application/json" }),
      );
    const response = await call();
    result.resource = { status: response.status, body: await response.text() };
    // The same token, sent by openid-client over a connection without the certificate.
    config[client.customFetch] = tlsFetch(false);
    try {
      const bare = await call();
      result.bare = { status: bare.status, www_authenticate: bare.headers.get("www-authenticate") };
    } catch (error) {
      // openid-client turns a 401 challenge into an error: keep what it saw.
      const response = error.response ?? error.cause;
      result.bare = {
        status: error.status ?? response?.status,
        www_authenticate: response?.headers?.get?.("www-authenticate") ?? null,
        error: error.name,
        message: error.message,
      };
    }
  }
  console.log(JSON.stringify(result));
} catch (error) {
  console.log(
    JSON.stringify({
      ok: false,
      error: {
        name: error.name,
        message: error.message,
        code: error.code,
        error: error.error,
        status: error.status,
      },
    }),
  );
}
