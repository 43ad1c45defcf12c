/**
 * A small glob over the file system (Node 20 has no `fs.glob`): `*` and `?` within one
 * path segment, `**` for any number of directories. Like a shell, wildcards do not match
 * a leading dot, so `*.csv` skips `.part.csv` files still being written. Symbolic links
 * to directories are not descended by `**` (no loops).
 */
import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, parse, resolve, sep } from 'node:path';

/** Whether a path contains glob wildcards. */
export function hasGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

/** RegExp for one path segment pattern (`*`, `?`; everything else literal). */
export function segmentRegExp(segment: string): RegExp {
  let src = '';
  for (const ch of segment) {
    if (ch === '*') src += '[^/]*';
    else if (ch === '?') src += '[^/]';
    else src += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`);
}

/** Whether a relative `/`-separated path matches a pattern (for tests and in-memory checks). */
export function globMatch(pattern: string, path: string): boolean {
  const ps = pattern.split('/').filter((s) => s !== '');
  const xs = path.split('/').filter((s) => s !== '');
  const m = (i: number, j: number): boolean => {
    if (i === ps.length) return j === xs.length;
    if (ps[i] === '**') {
      for (let k = j; k <= xs.length; k++) {
        if (k > j && xs[k - 1].startsWith('.')) break;
        if (m(i + 1, k)) return true;
      }
      return false;
    }
    if (j === xs.length) return false;
    if (xs[j].startsWith('.') && !ps[i].startsWith('.')) return false;
    return segmentRegExp(ps[i]).test(xs[j]) && m(i + 1, j + 1);
  };
  return m(0, 0);
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export interface GlobOptions {
  signal?: AbortSignal;
  /** Stop after visiting this many directory entries (a runaway `**` over a huge tree); default 100 000. */
  maxEntries?: number;
}

/** Thrown when a glob walk visits more entries than allowed. */
export class GlobTooLargeError extends Error {}

/**
 * Absolute paths (files and directories) matching `pattern`, sorted. A relative pattern
 * is resolved against the current directory. A pattern without wildcards matches itself
 * if it exists. A trailing `**` means `**` + `/*`.
 */
export async function glob(pattern: string, opts: GlobOptions = {}): Promise<string[]> {
  const abs = isAbsolute(pattern) ? pattern : resolve(pattern);
  const root = parse(abs).root;
  const segs = abs.slice(root.length).split(/[\\/]+/).filter((s) => s !== '');
  if (segs[segs.length - 1] === '**') segs.push('*');
  const out = new Set<string>();
  const budget = { left: opts.maxEntries ?? 100_000 };

  const expand = async (dir: string, i: number): Promise<void> => {
    opts.signal?.throwIfAborted();
    if (i === segs.length) {
      out.add(dir);
      return;
    }
    const seg = segs[i];
    const last = i === segs.length - 1;
    if (!hasGlob(seg)) {
      const p = join(dir, seg);
      if (last) {
        if (await exists(p)) out.add(p);
      } else if (await isDir(p)) {
        await expand(p, i + 1);
      }
      return;
    }
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    budget.left -= entries.length;
    if (budget.left < 0) {
      throw new GlobTooLargeError(`glob '${pattern}' visits more than ${opts.maxEntries ?? 100_000} entries; narrow the pattern`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (seg === '**') {
      await expand(dir, i + 1);
      for (const e of entries) {
        if (e.isDirectory() && !e.name.startsWith('.')) await expand(join(dir, e.name), i);
      }
      return;
    }
    const re = segmentRegExp(seg);
    for (const e of entries) {
      if (e.name.startsWith('.') && !seg.startsWith('.')) continue;
      if (!re.test(e.name)) continue;
      const p = join(dir, e.name);
      if (last) out.add(p);
      else if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(p)))) await expand(p, i + 1);
    }
  };

  await expand(root || sep, 0);
  return [...out].sort();
}
