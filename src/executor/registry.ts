import type { Operator } from './operator.ts';

/** Operators by type. The core registers "inline", "command" and "sensor"; plugins add the rest. */
export class OperatorRegistry {
  private readonly byType = new Map<string, Operator>();

  register(op: Operator): void {
    if (this.byType.has(op.type)) throw new Error(`operator type '${op.type}' is registered twice`);
    this.byType.set(op.type, op);
  }

  get(type: string): Operator | undefined {
    return this.byType.get(type);
  }

  types(): string[] {
    return [...this.byType.keys()].sort();
  }
}
