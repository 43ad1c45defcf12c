/**
 * Cron presets as Airflow accepts them, mapped to five-field expressions.
 * `@once` is not a preset here: trigger such a DAG manually (`schedule: null`) instead.
 */
export const CRON_PRESETS: Readonly<Record<string, string>> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
};

/** The five-field expression for a preset, or null when `name` is not one. Case-insensitive. */
export function presetExpression(name: string): string | null {
  return CRON_PRESETS[name.trim().toLowerCase()] ?? null;
}
