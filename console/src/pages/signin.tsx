import { useState } from 'preact/hooks';
import { ErrorNote, messageOf } from '../components.js';
import { signIn, type Session } from '../session.js';

/** Sign-in with an API key; the key is checked with the server before it is kept for the tab. */
export function SignIn(props: {
  notice: string | undefined;
  onSignedIn: (session: Session) => void;
}) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      props.onSignedIn(await signIn(token.trim()));
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <h1>QCAT console</h1>
      {props.notice !== undefined && (
        <p class="notice" role="alert">
          {props.notice}
        </p>
      )}
      <form onSubmit={(event) => void submit(event)}>
        <label for="token">API key</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          placeholder="qcat_<keyId>_<secret>"
          required
          value={token}
          onInput={(event) => {
            setToken(event.currentTarget.value);
          }}
        />
        <p class="muted">
          Kept for this browser tab only (sessionStorage); closing the tab signs you out.
        </p>
        <ErrorNote error={error} />
        <button type="submit" disabled={busy || token.trim() === ''}>
          Sign in
        </button>
      </form>
    </main>
  );
}
