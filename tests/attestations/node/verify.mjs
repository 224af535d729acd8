// Receiver recipe for Node (see idp/attestations/RECEIVERS.md): verify the JWT form of a
// Hoviyat attestation trusting only the Hoviyat root certificate.
// Usage: node verify.mjs ROOT.pem [AUDIENCE] < attestation.jwt   (prints the claims as JSON)
import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { decodeProtectedHeader, jwtVerify } from "jose";

const root = new X509Certificate(readFileSync(process.argv[2]));
const audience = process.argv[3];
const token = readFileSync(0, "utf8").trim();

// 1. The chain from the x5c header (leaf, issuing CA), ending at the pinned root.
const { x5c } = decodeProtectedHeader(token);
if (!Array.isArray(x5c) || x5c.length === 0) throw new Error("no x5c chain in the header");
const path = [...x5c.map((der) => new X509Certificate(Buffer.from(der, "base64"))), root];
const now = new Date();
path.forEach((cert, i) => {
  if (new Date(cert.validFrom) > now || new Date(cert.validTo) < now)
    throw new Error(`certificate ${cert.subject} is outside its validity`);
  if (i > 0 && !cert.ca) throw new Error(`certificate ${cert.subject} is not a CA`);
  if (i < path.length - 1) {
    const issuer = path[i + 1];
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey))
      throw new Error(`certificate ${cert.subject} is not signed by ${issuer.subject}`);
  }
});

// 2. The signature, type, algorithm and times, with the leaf's key.
const { payload } = await jwtVerify(token, path[0].publicKey, {
  algorithms: ["ES256"],
  typ: "hoviyat-attestation+jwt",
  ...(audience ? { audience } : {}),
});
// RFC 7519 §4.1.3: jose checks aud only when asked; a token for a named receiver needs one.
if (!audience && payload.aud !== undefined) throw new Error("issued for a named receiver: pass your audience");
process.stdout.write(JSON.stringify(payload));
