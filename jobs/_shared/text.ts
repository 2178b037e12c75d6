/** Shared by several job functions: imported as "../_shared/text.ts". */
export function words(text: string): string[] {
  return text.toLowerCase().split(/[^\p{L}\p{N}']+/u).filter((w) => w.length > 0);
}
