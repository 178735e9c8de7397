import { describe, expect, it } from 'vitest';
import { progressBar } from './optimize-commands.js';

describe('qcat optimize progress bar', () => {
  it('fills in proportion to the trials done and shows the best score', () => {
    expect(progressBar(0, 10, null, 10)).toBe('[..........] 0/10 trials');
    expect(progressBar(5, 10, 1.23456, 10)).toBe('[#####.....] 5/10 trials  best 1.235');
    expect(progressBar(12, 10, null, 10)).toBe('[##########] 12/10 trials');
  });
});
