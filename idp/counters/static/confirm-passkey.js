// The citizen confirms, on their own phone, that they are at a service counter, with their
// passkey (W3C WebAuthn Level 3 §5.1.4). The server makes every decision; this only carries
// the link's assertion options to the authenticator and its answer back. The clerk's page
// runs no script and no ceremony: this page is the citizen's, opened from the counter's QR.
"use strict";
(function () {
  const form = document.getElementById("confirm-form");
  if (!form) {
    return;
  }
  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.getElementById("passkey-unsupported").hidden = false;
    return;
  }
  const error = document.getElementById("confirm-error");
  form.hidden = false;

  function encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (const byte of bytes) {
      text += String.fromCharCode(byte);
    }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  async function post(path, credential) {
    const body = new URLSearchParams();
    if (credential) {
      body.set("credential", JSON.stringify(credential));
    }
    const response = await fetch(path, {
      method: "POST",
      body: body,
      credentials: "omit",
      headers: { Accept: "application/json" },
    });
    const answer = await response.json();
    if (!response.ok) {
      throw new Error(answer.detail || String(response.status));
    }
    return answer;
  }

  async function confirm() {
    const options = await post(form.dataset.options);
    const publicKey = Object.assign({}, options, {
      challenge: decode(options.challenge),
      allowCredentials: (options.allowCredentials || []).map((item) =>
        Object.assign({}, item, { id: decode(item.id) }),
      ),
    });
    const signed = await navigator.credentials.get({ publicKey: publicKey });
    const answer = await post(form.action, {
      id: signed.id,
      rawId: encode(signed.rawId),
      type: signed.type,
      response: {
        clientDataJSON: encode(signed.response.clientDataJSON),
        authenticatorData: encode(signed.response.authenticatorData),
        signature: encode(signed.response.signature),
        userHandle: signed.response.userHandle ? encode(signed.response.userHandle) : null,
      },
      clientExtensionResults: signed.getClientExtensionResults(),
      authenticatorAttachment: signed.authenticatorAttachment,
    });
    return answer.next;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.hidden = true;
    try {
      window.location.assign(await confirm());
    } catch (failure) {
      error.textContent = form.dataset.failed;
      error.hidden = false;
      button.disabled = false;
      form.dataset.lastError = String(failure && failure.message);
    }
  });
})();
