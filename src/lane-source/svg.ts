/** Short, stable number text for SVG attributes (no trailing zeros). */
export function f(value: number, decimals = 2): string {
  return Number(value.toFixed(decimals)).toString();
}
