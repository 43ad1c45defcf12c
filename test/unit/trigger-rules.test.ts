import { describe, expect, it } from 'vitest';
import { TRIGGER_RULES, type TaskState, type TriggerRule } from '../../src/dag/types.ts';
import { decide, summarize, type TriggerDecision } from '../../src/scheduler/trigger-rules.ts';

type Case = [upstreams: TaskState[], expected: TriggerDecision];

// One table per rule. Upstream states are the direct upstream task instances' states;
// 'running' (or 'none', 'queued', 'up_for_retry') means "not finished yet".
const table: Record<TriggerRule, Case[]> = {
  all_success: [
    [['success', 'success'], 'run'],
    [['success', 'running'], 'wait'],
    [['failed', 'running'], 'upstream_failed'],
    [['upstream_failed', 'success'], 'upstream_failed'],
    [['skipped', 'running'], 'skip'],
    [['skipped', 'failed'], 'upstream_failed'],
    [['success', 'up_for_retry'], 'wait'],
    [['success', 'removed'], 'wait'],
  ],
  all_failed: [
    [['failed', 'failed'], 'run'],
    [['failed', 'upstream_failed'], 'run'],
    [['failed', 'running'], 'wait'],
    [['success', 'running'], 'skip'],
    [['skipped', 'failed'], 'skip'],
  ],
  all_done: [
    [['success', 'failed', 'skipped', 'upstream_failed', 'removed'], 'run'],
    [['failed', 'running'], 'wait'],
    [['success', 'up_for_retry'], 'wait'],
    [['skipped', 'skipped'], 'run'],
  ],
  one_success: [
    [['success', 'running'], 'run'],
    [['running', 'running'], 'wait'],
    [['failed', 'running'], 'wait'],
    [['skipped', 'skipped'], 'skip'],
    [['failed', 'skipped'], 'upstream_failed'],
    [['failed', 'failed'], 'upstream_failed'],
    [['skipped', 'running'], 'wait'],
  ],
  one_failed: [
    [['failed', 'running'], 'run'],
    [['upstream_failed', 'running'], 'run'],
    [['success', 'running'], 'wait'],
    [['success', 'success'], 'skip'],
    [['success', 'skipped'], 'skip'],
  ],
  one_done: [
    [['success', 'running'], 'run'],
    [['failed', 'running'], 'run'],
    [['skipped', 'running'], 'wait'],
    [['skipped', 'upstream_failed'], 'skip'],
    [['running', 'queued'], 'wait'],
  ],
  none_failed: [
    [['success', 'skipped'], 'run'],
    [['skipped', 'skipped'], 'run'],
    [['success', 'running'], 'wait'],
    [['failed', 'running'], 'upstream_failed'],
    [['upstream_failed', 'success'], 'upstream_failed'],
  ],
  none_failed_min_one_success: [
    [['success', 'skipped'], 'run'],
    [['skipped', 'running'], 'wait'],
    [['skipped', 'skipped'], 'skip'],
    [['failed', 'running'], 'upstream_failed'],
    [['upstream_failed', 'skipped'], 'upstream_failed'],
    [['success', 'success'], 'run'],
  ],
  none_skipped: [
    [['success', 'failed'], 'run'],
    [['success', 'upstream_failed'], 'run'],
    [['success', 'running'], 'wait'],
    [['skipped', 'running'], 'skip'],
  ],
  always: [
    [['running', 'none'], 'run'],
    [['failed', 'skipped'], 'run'],
    [['upstream_failed'], 'run'],
  ],
};

describe('decide', () => {
  for (const rule of TRIGGER_RULES) {
    describe(rule, () => {
      for (const [states, expected] of table[rule]) {
        it(`upstreams [${states.join(', ')}] -> ${expected}`, () => {
          expect(decide(rule, summarize(states))).toBe(expected);
        });
      }
      it('runs a task without upstreams', () => {
        expect(decide(rule, summarize([]))).toBe('run');
      });
    });
  }

  it('one_failed fires as soon as one upstream fails', () => {
    expect(decide('one_failed', summarize(['failed', 'running', 'queued', 'none']))).toBe('run');
  });

  it('one_success fires as soon as one upstream succeeds', () => {
    expect(decide('one_success', summarize(['success', 'running', 'none']))).toBe('run');
  });

  it('a branch join with none_failed_min_one_success waits for the running branch, then runs once', () => {
    // branch chose 'b'; 'a' was skipped; 'b' is still running.
    expect(decide('none_failed_min_one_success', summarize(['skipped', 'running']))).toBe('wait');
    expect(decide('none_failed_min_one_success', summarize(['skipped', 'success']))).toBe('run');
  });

  it('all_success marks upstream_failed without waiting for the other upstreams', () => {
    expect(decide('all_success', summarize(['failed', 'running', 'none']))).toBe('upstream_failed');
  });

  it('a mapped instance does not count removed upstreams against all_success, none_failed and all_failed', () => {
    const s = summarize(['success', 'success', 'removed']);
    expect(decide('all_success', s, 0)).toBe('run');
    expect(decide('all_success', s, -1)).toBe('wait');
    expect(decide('none_failed', s, 2)).toBe('run');
    expect(decide('all_failed', summarize(['failed', 'removed']), 0)).toBe('run');
  });
});

describe('summarize', () => {
  it('counts each finished state and the finished total', () => {
    expect(summarize(['success', 'failed', 'upstream_failed', 'skipped', 'removed', 'running', 'up_for_retry', 'none', 'success'])).toEqual({
      total: 9,
      success: 2,
      failed: 1,
      upstream_failed: 1,
      skipped: 1,
      removed: 1,
      done: 6,
    });
  });

  it('does not count up_for_reschedule, queued or scheduled as done', () => {
    expect(summarize(['up_for_reschedule', 'queued', 'scheduled']).done).toBe(0);
  });
});
