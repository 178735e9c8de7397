import { ApiError, get } from '../api.js';
import { ErrorNote, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';

interface Ranking {
  at: string;
  trigger: string;
  topN: number;
  recommended: string[];
  scores: {
    symbol: string;
    score: number | null;
    dimensions: Record<string, { z: number | null; rank: number | null; missing?: string }>;
  }[];
}

/** The latest hot-symbol ranking: each symbol's score and its dimension scores. */
export function HotSymbols() {
  const ranking = useLoad(async () => {
    try {
      return await get<Ranking>('/hot-symbols');
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  });
  const data = ranking.data;
  const dimensions = Object.keys(data?.scores[0]?.dimensions ?? {});
  return (
    <Panel title="Ranking">
      <ErrorNote error={ranking.error} />
      {data === null && <p class="muted">No ranking yet.</p>}
      {data && (
        <p>
          Ranked {fmtTime(data.at)} ({data.trigger}); recommended:{' '}
          {data.recommended.join(', ') || 'none'}.
        </p>
      )}
      {data && (
        <Table
          caption="Hot-symbol scores"
          rows={data.scores}
          empty="No symbol scored."
          rowKey={(s) => s.symbol}
          columns={[
            { title: 'Symbol', cell: (s) => s.symbol },
            { title: 'Score', numeric: true, cell: (s) => s.score?.toFixed(3) ?? '—' },
            ...dimensions.map((name) => ({
              title: name,
              numeric: true,
              cell: (s: Ranking['scores'][number]) => {
                const d = s.dimensions[name];
                return d?.z === null || d?.z === undefined ? (d?.missing ?? '—') : d.z.toFixed(2);
              },
            })),
          ]}
        />
      )}
    </Panel>
  );
}
