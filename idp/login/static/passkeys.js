// The WebAuthn ceremonies of the "high" login page (W3C WebAuthn Level 3 §5.1.3, §5.1.4).
// The server makes every decision; this only carries options to the authenticator and its
// answer back, as form posts with the page's CSRF token (like every login form).
"use strict";
(function () {
  const form = document.getElementById("passkey-form");
  if (!form) {
    return;
  }
  const error = document.getElementById("passkey-error");
  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.getElementById(form.dataset.unsupported).hidden = false;
    return;
  }
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
    for (const name of ["interaction", "lang", "csrf_token"]) {
      const input = form.elements.namedItem(name);
      if (input) {
        body.set(name, input.value);
      }
    }
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

  function descriptors(list) {
    return (list || []).map((item) => Object.assign({}, item, { id: decode(item.id) }));
  }

  async function register() {
    const options = await post("/login/passkeys/register/options");
    const publicKey = Object.assign({}, options, {
      challenge: decode(options.challenge),
      user: Object.assign({}, options.user, { id: decode(options.user.id) }),
      excludeCredentials: descriptors(options.excludeCredentials),
    });
    const made = await navigator.credentials.create({ publicKey: publicKey });
    return post("/login/passkeys/register", {
      id: made.id,
      rawId: encode(made.rawId),
      type: made.type,
      response: {
        clientDataJSON: encode(made.response.clientDataJSON),
        attestationObject: encode(made.response.attestationObject),
        transports: made.response.getTransports ? made.response.getTransports() : [],
      },
      clientExtensionResults: made.getClientExtensionResults(),
      authenticatorAttachment: made.authenticatorAttachment,
    });
  }

  async function authenticate() {
    const options = await post("/login/passkeys/authenticate/options");
    const publicKey = Object.assign({}, options, {
      challenge: decode(options.challenge),
      allowCredentials: descriptors(options.allowCredentials),
    });
    const signed = await navigator.credentials.get({ publicKey: publicKey });
    const answer = await post("/login/passkeys/authenticate", {
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
    const button = event.submitter || form.querySelector("button[type=submit]");
    button.disabled = true;
    error.hidden = true;
    try {
      if (button.dataset.ceremony === "register") {
        const registered = await register();
        if (form.dataset.then === "reload") {
          // The citizen's passkeys page: added, shown in the list; no sign-in to do.
          window.location.assign(registered.next);
          return;
        }
      }
      window.location.assign(await authenticate());
    } catch (failure) {
      error.textContent = form.dataset.failed;
      error.hidden = false;
      button.disabled = false;
      form.dataset.lastError = String(failure && failure.message);
    }
  });
})();
