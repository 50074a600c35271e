/**
 * CPU time of each thread of this process, from Linux's /proc/self/task (elsewhere: none).
 * process.cpuUsage() sums every thread; the bench also wants the inference worker's own
 * thread, which runs ONNX Runtime (intra-op threads 1 run on the calling thread) and the
 * worker's JavaScript: that thread is the flow's critical path when cores are free.
 * (process.threadCpuUsage would say this from inside a thread, but only from Node 23.9.)
 */
import * as fs from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on every Linux build that matters). */
const TICKS_PER_SECOND = 100;
const TASKS = '/proc/self/task';

export interface ThreadTimes {
  /** Thread id -> its name and CPU ms (user + system) so far. */
  byThread: Map<string, { name: string; cpuMs: number }>;
}

/** Every thread's CPU time now, or undefined where /proc is not there. */
export function threadTimes(): ThreadTimes | undefined {
  let tids: string[];
  try {
    tids = fs.readdirSync(TASKS);
  } catch {
    return undefined;
  }
  const byThread = new Map<string, { name: string; cpuMs: number }>();
  for (const tid of tids) {
    let stat: string;
    try {
      stat = fs.readFileSync(`${TASKS}/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    // "tid (name) state ..." - the name may hold spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    // Fields after the name: utime is the 12th, stime the 13th (proc(5) fields 14 and 15).
    const ticks = Number(fields[11]) + Number(fields[12]);
    byThread.set(tid, { name: stat.slice(stat.indexOf('(') + 1, close), cpuMs: (ticks * 1000) / TICKS_PER_SECOND });
  }
  return { byThread };
}

/** CPU ms each thread of `among` used from `before` to `after`, busiest first. */
export function threadCpuBetween(before: ThreadTimes, after: ThreadTimes, among?: ReadonlySet<string>): { tid: string; name: string; cpuMs: number }[] {
  return [...after.byThread]
    .filter(([tid]) => !among || among.has(tid))
    .map(([tid, { name, cpuMs }]) => ({ tid, name, cpuMs: cpuMs - (before.byThread.get(tid)?.cpuMs ?? 0) }))
    .sort((a, b) => b.cpuMs - a.cpuMs);
}
