// The citizen's passkey as proof of presence at a service counter (W3C WebAuthn Level 3
// §5.1.4). The server makes every decision; this only carries the session's assertion
// options to the authenticator and its answer back, as form posts with the page's CSRF
// token. Without this script (or without WebAuthn) the form stays hidden and the texted
// code is the way.
"use strict";
(function () {
  const form = document.getElementById("passkey-presence");
  if (!form || !window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  const error = document.getElementById("passkey-error");
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
    body.set("csrf_token", form.elements.namedItem("csrf_token").value);
    if (credential) {
      body.set("credential", JSON.stringify(credential));
    }
    const response = await fetch(path, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const answer = await response.json();
    if (!response.ok) {
      throw new Error(answer.detail || String(response.status));
    }
    return answer;
  }

  async function prove() {
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
      window.location.assign(await prove());
    } catch (failure) {
      error.textContent = form.dataset.failed;
      error.hidden = false;
      button.disabled = false;
      form.dataset.lastError = String(failure && failure.message);
    }
  });
})();
