/** An optimization's trials as a scatter: one dot per trial, score against trial number. */

export interface Trial {
  trial: number;
  score: number | null;
  parameters: Record<string, unknown>;
  trades: number;
}

const WIDTH = 640;
const HEIGHT = 240;
const PAD = 36;

export function TrialScatter({ trials }: { trials: readonly Trial[] }) {
  const scored = trials.filter(
    (t): t is Trial & { score: number } => t.score !== null && Number.isFinite(t.score),
  );
  if (scored.length === 0)
    return <p class="muted">No trial has a score yet ({trials.length} run).</p>;
  const xs = scored.map((t) => t.trial);
  const ys = scored.map((t) => t.score);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const x = (v: number) => PAD + ((v - x0) / (x1 - x0 || 1)) * (WIDTH - 2 * PAD);
  const y = (v: number) => HEIGHT - PAD - ((v - y0) / (y1 - y0 || 1)) * (HEIGHT - 2 * PAD);
  const best = scored.reduce((a, b) => (b.score > a.score ? b : a));
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        class="scatter"
        role="img"
        aria-label={`Score of ${scored.length} trials; best ${best.score.toFixed(4)} at trial ${best.trial}`}
      >
        <line x1={PAD} y1={HEIGHT - PAD} x2={WIDTH - PAD} y2={HEIGHT - PAD} stroke="#7b8794" />
        <line x1={PAD} y1={PAD} x2={PAD} y2={HEIGHT - PAD} stroke="#7b8794" />
        <text x={PAD} y={PAD - 8} font-size="11">
          {y1.toFixed(3)}
        </text>
        <text x={PAD} y={HEIGHT - 8} font-size="11">
          {y0.toFixed(3)} · trial {x0}
        </text>
        <text x={WIDTH - PAD} y={HEIGHT - 8} font-size="11" text-anchor="end">
          trial {x1}
        </text>
        {scored.map((t) => (
          <circle
            key={t.trial}
            cx={x(t.trial)}
            cy={y(t.score)}
            r={t === best ? 5 : 3}
            fill={t === best ? '#b91c1c' : '#1d4ed8'}
          >
            <title>{`trial ${t.trial}: score ${t.score.toFixed(4)}, ${t.trades} trades, ${JSON.stringify(t.parameters)}`}</title>
          </circle>
        ))}
      </svg>
      <figcaption>
        {scored.length} scored trials of {trials.length}; best (red) trial {best.trial}:{' '}
        {best.score.toFixed(4)} with <code>{JSON.stringify(best.parameters)}</code>.
      </figcaption>
    </figure>
  );
}
