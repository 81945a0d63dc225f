/** PostgreSQL WAL positions ('16/B374D848'), as bigints so they can be compared and subtracted. */
export function parseLsn(text: string | null | undefined): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (match === null) return undefined;
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}
