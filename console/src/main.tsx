import { createContext, render } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { Permission } from '../../core/access/roles.js';
import { whenKeyRefused } from './api.js';
import { LiveFeed, type LiveState } from './live.js';
import { may, restoredSession, signOut, type Session } from './session.js';
import { SignIn } from './pages/signin.js';
import { Overview } from './pages/overview.js';
import { Approvals } from './pages/approvals.js';
import { Risk } from './pages/risk.js';
import { Strategies } from './pages/strategies.js';
import { Audit } from './pages/audit.js';
import { Operations } from './pages/operations.js';
import { Markets } from './pages/markets.js';
import { Portfolio } from './pages/portfolio.js';
import { HotSymbols } from './pages/hot-symbols.js';
import { Automation } from './pages/automation.js';
import { Research } from './pages/research.js';

export interface Context {
  session: Session;
  live: LiveFeed;
}

const AppContext = createContext<Context | undefined>(undefined);

/** The signed-in session and live feed, for pages. */
export function useApp(): Context {
  const context = useContext(AppContext);
  if (context === undefined) throw new Error('page rendered outside the signed-in console');
  return context;
}

/** Every page, the permission that shows it, and its place in the menu. */
const PAGES: readonly {
  path: string;
  title: string;
  permission: Permission;
  page: (props: { rest: string }) => preact.JSX.Element;
}[] = [
  { path: 'overview', title: 'Overview', permission: 'trading:read', page: Overview },
  { path: 'approvals', title: 'Approvals', permission: 'approvals:read', page: Approvals },
  { path: 'risk', title: 'Risk', permission: 'risk:read', page: Risk },
  { path: 'strategies', title: 'Strategies', permission: 'strategies:read', page: Strategies },
  { path: 'markets', title: 'Markets', permission: 'market:read', page: Markets },
  { path: 'research', title: 'Research', permission: 'backtests:read', page: Research },
  { path: 'portfolio', title: 'Portfolio', permission: 'portfolios:read', page: Portfolio },
  { path: 'hot-symbols', title: 'Hot symbols', permission: 'market:read', page: HotSymbols },
  { path: 'automation', title: 'Automation', permission: 'automation:read', page: Automation },
  { path: 'audit', title: 'Audit', permission: 'audit:read', page: Audit },
  { path: 'operations', title: 'Operations', permission: 'projections:read', page: Operations },
];

const currentRoute = (): string => location.hash.replace(/^#\/?/, '');

function useRoute(): string {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const changed = () => {
      setRoute(currentRoute());
    };
    addEventListener('hashchange', changed);
    return () => {
      removeEventListener('hashchange', changed);
    };
  }, []);
  return route;
}

const LIVE_WORDS: Record<LiveState, string> = {
  connecting: 'Connecting to the live feed…',
  live: 'Live',
  away: 'QCAT does not answer: reconnecting…',
  refused: 'The live feed refused the key',
};

function Console({ session, onSignOut }: { session: Session; onSignOut: (why?: string) => void }) {
  const [live] = useState(
    () =>
      new LiveFeed(session.token, () => {
        onSignOut('Your API key is no longer accepted (revoked or rotated). Sign in again.');
      }),
  );
  const [liveState, setLiveState] = useState<LiveState>(live.state);
  useEffect(() => {
    const stop = live.onState(setLiveState);
    return () => {
      stop();
      live.close();
    };
  }, [live]);
  const route = useRoute();
  const allowed = PAGES.filter((page) => may(session, page.permission));
  const [head = '', ...rest] = route.split('/');
  const chosen = allowed.find((page) => page.path === head) ?? allowed[0];
  useEffect(() => {
    document.title = `${chosen?.title ?? 'Console'} · QCAT`;
  }, [chosen]);
  return (
    <AppContext.Provider value={{ session, live }}>
      <header class="top">
        <span class="brand">QCAT console</span>
        <span class={`live live-${liveState}`} role="status" data-testid="live-state">
          {LIVE_WORDS[liveState]}
        </span>
        <span class="who">
          {session.name} · <strong data-testid="role">{session.role}</strong>
        </span>
        <button
          type="button"
          onClick={() => {
            onSignOut();
          }}
        >
          Sign out
        </button>
      </header>
      <nav aria-label="Pages">
        <ul>
          {allowed.map((page) => (
            <li key={page.path}>
              <a href={`#/${page.path}`} aria-current={page === chosen ? 'page' : undefined}>
                {page.title}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main">
        {chosen ? (
          <>
            <h1>{chosen.title}</h1>
            <chosen.page key={chosen.path} rest={rest.join('/')} />
          </>
        ) : (
          <p>Your role may not read any page of the console.</p>
        )}
      </main>
    </AppContext.Provider>
  );
}

function App() {
  const [session, setSession] = useState<Session | undefined>(restoredSession);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const leave = (why?: string) => {
    signOut();
    setNotice(why);
    setSession(undefined);
  };
  useEffect(() => {
    whenKeyRefused((error) => {
      leave(error.message);
    });
  }, []);
  if (session === undefined)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(signedIn) => {
          setNotice(undefined);
          setSession(signedIn);
        }}
      />
    );
  return <Console session={session} onSignOut={leave} />;
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
