import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSensor } from '../../src/sensors/file.ts';
import { glob, globMatch } from '../../src/sensors/glob.ts';
import { parseSensorArgs, pokeSensor, SensorArgsError, type PokeContext } from '../../src/sensors/sensor.ts';

const now = new Date('2026-12-03T12:00:00Z');
let dir: string;

async function file(rel: string, ageSeconds: number, content = 'x') {
  const p = join(dir, rel);
  await mkdir(join(p, '..'), { recursive: true });
  await writeFile(p, content);
  const t = new Date(now.getTime() - ageSeconds * 1000);
  await utimes(p, t, t);
  return p;
}

function ctx(): PokeContext {
  const noop = () => {};
  return {
    dag_id: 'nightly_report',
    run_id: 'scheduled__2026-12-02T00:00:00.000Z',
    task_id: 'wait_for_export',
    logical_date: new Date('2026-12-02T00:00:00Z'),
    data_interval_start: new Date('2026-12-02T00:00:00Z'),
    data_interval_end: new Date('2026-12-03T00:00:00Z'),
    redis: undefined as never,
    prefix: 'unused',
    log: { debug: noop, info: noop, warn: noop, error: noop, raw: noop },
    signal: new AbortController().signal,
    now: () => now,
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'podflow-file-sensor-'));
  await file('in/a.csv', 600);
  await file('in/b.csv', 5);
  await file('in/.c.csv.part', 600);
  await file('in/notes.txt', 600);
  await file('in/2026/12/day.csv', 900, 'abcd');
  await file('in/.hidden/x.csv', 900);
  await file('other/q1.json', 900);
  await file('other/q22.json', 900);
  await symlink(join(dir, 'in'), join(dir, 'in', 'loop'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('glob', () => {
  it('matches * and ? within a segment, skipping dot files', async () => {
    expect(await glob(join(dir, 'in/*.csv'))).toEqual([join(dir, 'in/a.csv'), join(dir, 'in/b.csv')]);
    expect(await glob(join(dir, 'other/q?.json'))).toEqual([join(dir, 'other/q1.json')]);
    expect(await glob(join(dir, 'in/.*.part'))).toEqual([join(dir, 'in/.c.csv.part')]);
  });

  it('matches ** across directories without entering dot dirs or symlinked dirs', async () => {
    expect(await glob(join(dir, 'in/**/*.csv'))).toEqual([join(dir, 'in/2026/12/day.csv'), join(dir, 'in/a.csv'), join(dir, 'in/b.csv')]);
    expect(await glob(join(dir, '**/q*.json'))).toEqual([join(dir, 'other/q1.json'), join(dir, 'other/q22.json')]);
  });

  it('returns a plain path if it exists and nothing for a missing base', async () => {
    expect(await glob(join(dir, 'in/notes.txt'))).toEqual([join(dir, 'in/notes.txt')]);
    expect(await glob(join(dir, 'missing/*.csv'))).toEqual([]);
  });

  it('refuses a walk over more entries than allowed', async () => {
    await expect(glob(join(dir, '**/*'), { maxEntries: 3 })).rejects.toThrow(/visits more than 3 entries; narrow the pattern/);
  });

  it('matches paths in memory with the same rules', () => {
    expect(globMatch('in/**/*.csv', 'in/a.csv')).toBe(true);
    expect(globMatch('in/**/*.csv', 'in/x/y/z.csv')).toBe(true);
    expect(globMatch('in/**/*.csv', 'in/.h/z.csv')).toBe(false);
    expect(globMatch('in/*.csv', 'in/.a.csv')).toBe(false);
    expect(globMatch('in/?.csv', 'in/ab.csv')).toBe(false);
    expect(globMatch('in/a+b(1).csv', 'in/a+b(1).csv')).toBe(true);
  });
});

describe('file sensor', () => {
  it('is done for an existing path and reports it with its mtime and size', async () => {
    const r = await pokeSensor(fileSensor, { path: join(dir, 'in/2026/12/day.csv') }, ctx());
    const mtime = new Date(now.getTime() - 900_000);
    expect(r).toEqual({
      done: true,
      event_key: `${join(dir, 'in/2026/12/day.csv')}@${mtime.getTime()}`,
      xcom: { count: 1, files: [{ path: join(dir, 'in/2026/12/day.csv'), mtime: mtime.toISOString(), size: 4 }] },
    });
  });

  it('waits for a missing path', async () => {
    expect(await pokeSensor(fileSensor, { path: join(dir, 'in/absent.csv') }, ctx())).toEqual({
      done: false,
      detail: `0 of 1 required entries match '${join(dir, 'in/absent.csv')}'`,
    });
  });

  it('counts only glob matches older than min_age_seconds', async () => {
    const r = await pokeSensor(fileSensor, { path: join(dir, 'in/*.csv'), min_age_seconds: 60 }, ctx());
    expect(r).toMatchObject({ done: true, xcom: { count: 1, files: [{ path: join(dir, 'in/a.csv') }] } });
    const two = await pokeSensor(fileSensor, { path: join(dir, 'in/*.csv'), min_age_seconds: 60, min_count: 2 }, ctx());
    expect(two).toEqual({ done: false, detail: `1 of 2 required entries match '${join(dir, 'in/*.csv')}'; 1 more is younger than 60s` });
  });

  it('names the newest match in the event key, so a rewritten file is a new event', async () => {
    const r = await pokeSensor(fileSensor, { path: join(dir, 'in/*.csv') }, ctx());
    expect(r).toMatchObject({ done: true, event_key: `${join(dir, 'in/b.csv')}@${now.getTime() - 5000}` });
  });

  it('rejects invalid arguments naming the DAG, task and field', () => {
    expect(() => parseSensorArgs(fileSensor, { path: '', min_age_seconds: -1 }, ctx())).toThrow(
      new SensorArgsError(
        "DAG 'nightly_report' task 'wait_for_export': arguments of sensor 'file' are invalid: field 'path': Too small: expected string to have >=1 characters; field 'min_age_seconds': Too small: expected number to be >=0. Fix them in the DAG file.",
      ),
    );
  });
});
