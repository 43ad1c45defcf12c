import { describe, expect, it } from 'vitest';
import { isValidDns1123Label, isValidLabelValue, labelValue, podName } from '../pod-names.ts';

// Deterministic pseudo-random ids (no Math.random: failures must reproduce).
function* nastyIds(): Generator<string> {
  yield '';
  yield '-';
  yield '_';
  yield '.';
  yield '...';
  yield 'a';
  yield 'UPPER_lower';
  yield 'train.model';
  yield 'manual__2026-12-03T18:00:00+00:00';
  yield 'scheduled__2026-01-01T00:00:00.000000+00:00';
  yield '--leading-and-trailing--';
  yield '__x__';
  yield 'ünïcödé-名前-🚀';
  yield 'a'.repeat(63);
  yield 'a'.repeat(64);
  yield 'b'.repeat(250);
  yield `${'x'.repeat(62)}-`;
  yield `-${'y'.repeat(70)}-`;
  yield 'has space/and slash\\and"quote';
  yield '0123456789';
  const alphabet = 'aZ09-_.:+/ @ü名🚀';
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 400; i++) {
    const len = Math.floor(rnd() * 120);
    let s = '';
    for (let j = 0; j < len; j++) s += [...alphabet][Math.floor(rnd() * [...alphabet].length)];
    yield s;
  }
}

describe('podName', () => {
  it('is a DNS-1123 label of at most 63 characters for any DAG and task id', () => {
    for (const dag of nastyIds()) {
      for (const task of ['t', 'train.search', 'Ω'.repeat(80)]) {
        const name = podName({ dagId: dag, taskId: task, runId: 'r', mapIndex: 1234, tryNumber: 99, attempt: 7 });
        expect(isValidDns1123Label(name), `${JSON.stringify(dag)} / ${task} -> ${name}`).toBe(true);
      }
    }
  });

  it('is the same for the same ids (a restarted worker finds its pod)', () => {
    const id = { dagId: 'iris_training', taskId: 'train', runId: 'manual__1', mapIndex: -1, tryNumber: 2 };
    expect(podName(id)).toBe(podName({ ...id }));
    expect(podName(id)).toMatch(/^iris-training-train-[0-9a-f]{8}-t2$/);
  });

  it('differs per try, attempt, map index, run and between ids that sanitize alike', () => {
    const base = { dagId: 'd', taskId: 'a_b', runId: 'r1', mapIndex: -1, tryNumber: 1 };
    const names = new Set([
      podName(base),
      podName({ ...base, tryNumber: 2 }),
      podName({ ...base, attempt: 1 }),
      podName({ ...base, mapIndex: 0 }),
      podName({ ...base, mapIndex: 1 }),
      podName({ ...base, runId: 'r2' }),
      podName({ ...base, taskId: 'a.b' }),
      podName({ ...base, taskId: 'A_B' }),
    ]);
    expect(names.size).toBe(8);
  });

  it('keeps the try suffix when the ids are very long', () => {
    const name = podName({ dagId: 'd'.repeat(200), taskId: 't'.repeat(200), runId: 'r', mapIndex: 12, tryNumber: 3, attempt: 2 });
    expect(name.length).toBe(63);
    expect(name.endsWith('-m12-t3-a2')).toBe(true);
  });
});

describe('labelValue', () => {
  it('is a valid label value for any id', () => {
    for (const id of nastyIds()) {
      const v = labelValue(id);
      expect(isValidLabelValue(v), `${JSON.stringify(id)} -> ${JSON.stringify(v)}`).toBe(true);
    }
  });

  it('leaves valid values unchanged', () => {
    for (const v of ['train', 'Train_1.2-x', 'a'.repeat(63), '', '0']) expect(labelValue(v)).toBe(v);
  });

  it('maps distinct ids to distinct values, deterministically', () => {
    const seen = new Map<string, string>();
    for (const id of nastyIds()) {
      const v = labelValue(id);
      expect(labelValue(id)).toBe(v);
      if (seen.has(v)) expect(seen.get(v)).toBe(id);
      seen.set(v, id);
    }
    expect(labelValue('a:b')).not.toBe(labelValue('a_b'));
    expect(labelValue('a'.repeat(64))).not.toBe(labelValue('a'.repeat(65)));
  });

  it('hashes a truncated value', () => {
    const v = labelValue('x'.repeat(100));
    expect(v).toMatch(/^x{54}-[0-9a-f]{8}$/);
  });
});
