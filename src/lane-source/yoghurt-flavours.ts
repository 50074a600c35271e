/**
 * The product line of the synthetic lane: one brand, several flavours. Like real cups,
 * flavours share the cup, the brand badge and the layout, and differ in lid print, label
 * band, fruit motif and name; some share a colour family (strawberry/cherry are red,
 * blueberry/natural are blue, peach/vanilla warm), so a classifier has to look at more
 * than one flat colour.
 */
export const YOGHURT_FLAVOURS = ['strawberry', 'vanilla', 'blueberry', 'natural', 'peach', 'cherry'] as const;
export type YoghurtFlavour = (typeof YOGHURT_FLAVOURS)[number];

export type LidPattern = 'dots' | 'stripes' | 'rays' | 'waves' | 'checks';
export type Motif = 'strawberry' | 'cherry' | 'blueberry' | 'peach' | 'vanilla' | 'natural';

export interface FlavourDesign {
  /** Printed on lid and label. */
  title: string;
  cupColour: string;
  lid: { base: string; pattern: LidPattern; patternColour: string; textColour: string };
  band: { base: string; border: string; textColour: string; motif: Motif };
}

export const FLAVOUR_DESIGNS: Record<YoghurtFlavour, FlavourDesign> = {
  strawberry: {
    title: 'STRAWBERRY',
    cupColour: '#f4f3ef',
    lid: { base: '#ee6a90', pattern: 'dots', patternColour: '#fbd3de', textColour: '#8e1030' },
    band: { base: '#fbfaf6', border: '#e4486f', textColour: '#c21f3a', motif: 'strawberry' },
  },
  cherry: {
    title: 'CHERRY',
    cupColour: '#f3eee8',
    lid: { base: '#8b1a2b', pattern: 'stripes', patternColour: '#a8374a', textColour: '#fbe9d0' },
    band: { base: '#f6ded0', border: '#7a1626', textColour: '#7a1626', motif: 'cherry' },
  },
  blueberry: {
    title: 'BLUEBERRY',
    cupColour: '#eef0f6',
    lid: { base: '#2f3a88', pattern: 'dots', patternColour: '#4d5cb8', textColour: '#ffffff' },
    band: { base: '#dfe2f6', border: '#27306f', textColour: '#27306f', motif: 'blueberry' },
  },
  natural: {
    title: 'NATURAL',
    cupColour: '#f7f7f5',
    lid: { base: '#f5f8fb', pattern: 'waves', patternColour: '#7fa8d8', textColour: '#1f4e8c' },
    band: { base: '#ffffff', border: '#2b6cb0', textColour: '#1f4e8c', motif: 'natural' },
  },
  peach: {
    title: 'PEACH',
    cupColour: '#f6f1ea',
    lid: { base: '#f59a44', pattern: 'rays', patternColour: '#fbbf6a', textColour: '#6e2b0e' },
    band: { base: '#ffe3c0', border: '#e0782f', textColour: '#a8431a', motif: 'peach' },
  },
  vanilla: {
    title: 'VANILLA',
    cupColour: '#f6f2e4',
    lid: { base: '#f4e4a8', pattern: 'checks', patternColour: '#e8d08a', textColour: '#5e3b1c' },
    band: { base: '#fff3c6', border: '#8a5a2b', textColour: '#6b4423', motif: 'vanilla' },
  },
};

export function isYoghurtFlavour(value: unknown): value is YoghurtFlavour {
  return typeof value === 'string' && (YOGHURT_FLAVOURS as readonly string[]).includes(value);
}

/** Shared gradients the motifs refer to; a scene puts these in its <defs> once. */
export const MOTIF_DEFS =
  '<radialGradient id="peachSkin" cx="0.35" cy="0.35" r="0.8"><stop offset="0" stop-color="#ffd27a"/>' +
  '<stop offset="0.6" stop-color="#f8924a"/><stop offset="1" stop-color="#e0553a"/></radialGradient>';

/** The fruit (or flower, or drop) of a flavour, centred on 0,0, about 2 units across. */
export function motifSvg(motif: Motif): string {
  switch (motif) {
    case 'strawberry':
      return (
        '<path d="M0 0.95C-0.5 0.6 -0.85 0 -0.8 -0.4C-0.75 -0.75 -0.35 -0.7 0 -0.62C0.35 -0.7 0.75 -0.75 0.8 -0.4C0.85 0 0.5 0.6 0 0.95Z" fill="#d7263d"/>' +
        '<g fill="#ffe27a"><circle cx="-0.35" cy="-0.2" r="0.06"/><circle cx="0.3" cy="-0.25" r="0.06"/><circle cx="0" cy="0.1" r="0.06"/>' +
        '<circle cx="-0.25" cy="0.35" r="0.06"/><circle cx="0.25" cy="0.35" r="0.06"/><circle cx="0" cy="0.62" r="0.06"/></g>' +
        '<path d="M0 -0.62L-0.55 -0.95L-0.2 -0.72L0 -1.05L0.2 -0.72L0.55 -0.95Z" fill="#3a9d23"/>'
      );
    case 'cherry':
      return (
        '<path d="M-0.45 0.25Q-0.3 -0.5 0.25 -0.95M0.45 0.35Q0.4 -0.4 0.25 -0.95" fill="none" stroke="#4e7a1e" stroke-width="0.1"/>' +
        '<path d="M0.25 -0.95Q0.75 -1.05 0.85 -0.7Q0.5 -0.6 0.25 -0.95Z" fill="#4e9a2a"/>' +
        '<circle cx="-0.45" cy="0.5" r="0.42" fill="#8e0f24"/><circle cx="0.45" cy="0.6" r="0.42" fill="#a3152c"/>' +
        '<circle cx="-0.58" cy="0.38" r="0.1" fill="#f3a1ad"/><circle cx="0.32" cy="0.48" r="0.1" fill="#f3a1ad"/>'
      );
    case 'blueberry':
      return (
        '<circle cx="-0.45" cy="0.3" r="0.48" fill="#34458f"/><circle cx="0.45" cy="0.35" r="0.45" fill="#2b3a7d"/>' +
        '<circle cx="0" cy="-0.4" r="0.5" fill="#3f52a3"/>' +
        '<g fill="#1b2456"><path d="M0 -0.62L0.1 -0.42L-0.1 -0.42Z"/><path d="M-0.45 0.12L-0.35 0.3L-0.55 0.3Z"/><path d="M0.45 0.17L0.55 0.35L0.35 0.35Z"/></g>' +
        '<circle cx="-0.15" cy="-0.55" r="0.1" fill="#a9b6e8"/>'
      );
    case 'peach':
      return (
        '<circle cx="0" cy="0.1" r="0.85" fill="url(#peachSkin)"/>' +
        '<path d="M0 -0.7Q-0.25 0.1 0 0.9" fill="none" stroke="#c9502e" stroke-width="0.08"/>' +
        '<path d="M0.05 -0.72Q0.6 -1.15 1 -0.8Q0.5 -0.45 0.05 -0.72Z" fill="#4f9a34"/>'
      );
    case 'vanilla':
      return (
        '<path d="M-0.9 0.9Q-0.2 0.1 0.85 -0.2" fill="none" stroke="#4a2c14" stroke-width="0.14" stroke-linecap="round"/>' +
        '<path d="M-0.8 1Q0 0.4 0.95 0.15" fill="none" stroke="#5b3a1e" stroke-width="0.12" stroke-linecap="round"/>' +
        '<g fill="#fffbe8" stroke="#e9d58c" stroke-width="0.04">' +
        [0, 72, 144, 216, 288].map((a) => `<ellipse cx="0" cy="-0.42" rx="0.2" ry="0.38" transform="rotate(${a} 0 -0.1) translate(0 -0.1)"/>`).join('') +
        '</g><circle cx="0" cy="-0.2" r="0.14" fill="#f2c230"/>'
      );
    case 'natural':
      return (
        '<path d="M0 -0.95C0.35 -0.4 0.7 0 0.7 0.35A0.7 0.7 0 0 1 -0.7 0.35C-0.7 0 -0.35 -0.4 0 -0.95Z" fill="#ffffff" stroke="#2b6cb0" stroke-width="0.1"/>' +
        '<path d="M-0.35 0.35Q-0.3 0.6 0 0.65" fill="none" stroke="#7fa8d8" stroke-width="0.08" stroke-linecap="round"/>'
      );
  }
}
