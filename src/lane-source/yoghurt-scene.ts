/**
 * Draws one lane-camera view as SVG: a modular conveyor belt between steel side rails,
 * seen from above at an angle, with one yoghurt cup on it (foil lid on top, tapered body
 * with a label band facing the camera) and its shadow. Camera effects that act on pixels
 * (exposure, white balance, noise, focus) are applied after rasterising, in
 * synthetic-yoghurt.ts.
 *
 * Coordinates are virtual units where the shorter image side is 480, so a scene looks the
 * same at any resolution.
 */
import { f } from './svg.js';
import { GLYPH_SIZE, strokeGlyphs, strokeStyle, strokeText, strokeTextWidth } from './stroke-font.js';
import { FLAVOUR_DESIGNS, MOTIF_DEFS, motifSvg, type FlavourDesign, type LidPattern, type YoghurtFlavour } from './yoghurt-flavours.js';

export const SCENE_SHORT_SIDE = 480;
/** Width of two belt links (one hinge-to-hinge repeat) along the direction of travel. */
const BELT_PITCH = 28;
/** Length of one link across the belt. */
const BELT_LINK_LENGTH = 40;
const GRIME_TILE = { width: 260, height: 190 } as const;

/** Everything that varies between frames, in virtual units and degrees. */
export interface YoghurtScene {
  flavour: YoghurtFlavour;
  /** Output size in pixels. */
  width: number;
  height: number;
  /** Centre of the lid. */
  cupX: number;
  cupY: number;
  /** Lid radius. */
  cupRadius: number;
  /** Lid height / width as seen by the camera: sine of the viewing elevation. */
  viewAspect: number;
  /** In-plane rotation of the cup about its own centre (camera roll and perspective). */
  tilt: number;
  /** Rotation of the cup about its vertical axis, 0..1 of a turn (turns lid print, slides label). */
  spin: number;
  /** Direction the light comes from, in degrees (0 = from the left, 90 = from the top). */
  lightAngle: number;
  /** Brightest point of the uneven illumination, 0..1 of the frame. */
  hotspotX: number;
  hotspotY: number;
  shadowLength: number;
  shadowSoftness: number;
  shadowOpacity: number;
  /** How far the belt has moved, in belt-module widths (0..1). */
  beltPhase: number;
  /** Grime texture seed for the belt (librsvg's feTurbulence is deterministic per seed). */
  grimeSeed: number;
}

/** Size of the virtual canvas for an output size. */
export function sceneExtent(width: number, height: number): { width: number; height: number; unit: number } {
  const unit = Math.min(width, height) / SCENE_SHORT_SIDE;
  return { width: width / unit, height: height / unit, unit };
}

/** Cup proportions relative to the lid radius. */
export const CUP_SHAPE = { bottomRatio: 0.78, bodyDepth: 0.95, bandTop: 0.1, bandBottom: 0.86, rimRatio: 1.05 } as const;

export function drawYoghurtScene(scene: YoghurtScene): string {
  const view = sceneExtent(scene.width, scene.height);
  const design = FLAVOUR_DESIGNS[scene.flavour];
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" ` +
    `viewBox="0 0 ${f(view.width)} ${f(view.height)}">` +
    `<defs>${MOTIF_DEFS}${sharedDefs(scene, design)}</defs>` +
    drawBelt(view.width, view.height) +
    drawShadow(scene) +
    drawCup(scene, design) +
    drawIllumination(view.width, view.height) +
    '</svg>'
  );
}

function sharedDefs(scene: YoghurtScene, design: FlavourDesign): string {
  const r = scene.cupRadius;
  // Light from the left makes the left of the cylinder bright; mirror the shading otherwise.
  const fromLeft = Math.cos((scene.lightAngle * Math.PI) / 180);
  const highlight = 0.32 - 0.14 * fromLeft;
  // Patterns repeat on whole pixels: librsvg takes a much slower path for fractional tiles.
  const { unit } = sceneExtent(scene.width, scene.height);
  const toPixels = (length: number) => Math.max(2, Math.round(length * unit)) / unit;
  const pitch = toPixels(BELT_PITCH);
  const linkLength = toPixels(BELT_LINK_LENGTH);
  const beltShift = Math.round(scene.beltPhase * pitch * unit) / unit;
  const grimeWidth = toPixels(GRIME_TILE.width);
  const grimeHeight = toPixels(GRIME_TILE.height);
  const beltLink = (x: number, y: number, colour: string, edge: string) =>
    `<rect x="${f(x + 1.4)}" y="${f(y + 1)}" width="${f(pitch / 2 - 2.8)}" height="${f(linkLength - 2)}" rx="2.5" fill="${colour}"/>` +
    `<rect x="${f(x + 3)}" y="${f(y + 4)}" width="1.6" height="${f(linkLength - 8)}" rx="0.8" fill="${edge}"/>`;
  return (
    // Modular plastic belt: the belt runs left to right, so hinge gaps run across it and
    // each column of links is staggered by half a link against the next.
    `<pattern id="beltLinks" patternUnits="userSpaceOnUse" width="${f(pitch, 4)}" height="${f(linkLength, 4)}" x="${f(beltShift, 4)}" y="0">` +
    `<rect width="${f(pitch, 4)}" height="${f(linkLength, 4)}" fill="#26292c"/>` +
    beltLink(0, 0, '#62686d', '#7b8287') +
    beltLink(pitch / 2, -linkLength / 2, '#5a6065', '#747b80') +
    beltLink(pitch / 2, linkLength / 2, '#5a6065', '#747b80') +
    `</pattern>` +
    // Wear and dirt streaks along the belt. Turbulence is the costliest part of the scene, so
    // it is rendered for one tile and repeated.
    `<filter id="grime" x="0" y="0" width="100%" height="100%" color-interpolation-filters="sRGB">` +
    `<feTurbulence type="fractalNoise" baseFrequency="0.008 0.07" numOctaves="3" stitchTiles="stitch" seed="${scene.grimeSeed}"/>` +
    `<feColorMatrix type="matrix" values="1.6 0 0 0 -0.3  1.6 0 0 0 -0.3  1.6 0 0 0 -0.3  0 0 0 0 0.2"/>` +
    `</filter>` +
    `<pattern id="grimeTile" patternUnits="userSpaceOnUse" width="${f(grimeWidth, 4)}" height="${f(grimeHeight, 4)}">` +
    `<rect width="${f(grimeWidth, 4)}" height="${f(grimeHeight, 4)}" filter="url(#grime)"/></pattern>` +
    `<linearGradient id="railSteel" x1="0" y1="0" x2="0" y2="1">` +
    `<stop offset="0" stop-color="#7d868b"/><stop offset="0.45" stop-color="#d5dadc"/>` +
    `<stop offset="0.7" stop-color="#a7afb3"/><stop offset="1" stop-color="#5f676c"/></linearGradient>` +
    // A soft-edged shadow from a gradient: a Gaussian blur filter would cost as much again.
    `<radialGradient id="shadowFade"><stop offset="${f(1 - scene.shadowSoftness / 20)}" stop-color="#000" stop-opacity="${f(scene.shadowOpacity)}"/>` +
    `<stop offset="1" stop-color="#000" stop-opacity="0"/></radialGradient>` +
    // Cylinder shading across the cup body, in the cup's own frame.
    `<linearGradient id="cylinder" gradientUnits="userSpaceOnUse" x1="${f(-r)}" y1="0" x2="${f(r)}" y2="0">` +
    `<stop offset="0" stop-color="#000" stop-opacity="0.42"/>` +
    `<stop offset="${f(highlight - 0.14)}" stop-color="#000" stop-opacity="0.05"/>` +
    `<stop offset="${f(highlight)}" stop-color="#fff" stop-opacity="0.35"/>` +
    `<stop offset="${f(highlight + 0.16)}" stop-color="#fff" stop-opacity="0"/>` +
    `<stop offset="0.86" stop-color="#000" stop-opacity="0.2"/>` +
    `<stop offset="1" stop-color="#000" stop-opacity="0.5"/></linearGradient>` +
    // Foil sheen across the lid, along the light direction.
    `<linearGradient id="foilSheen" gradientUnits="userSpaceOnUse" x1="${f(-r * fromLeft)}" y1="${f(-r * Math.sin((scene.lightAngle * Math.PI) / 180))}" ` +
    `x2="${f(r * fromLeft)}" y2="${f(r * Math.sin((scene.lightAngle * Math.PI) / 180))}">` +
    `<stop offset="0" stop-color="#fff" stop-opacity="0.3"/><stop offset="0.35" stop-color="#fff" stop-opacity="0.06"/>` +
    `<stop offset="0.6" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#000" stop-opacity="0.22"/></linearGradient>` +
    `<radialGradient id="hotspot" cx="${f(scene.hotspotX)}" cy="${f(scene.hotspotY)}" r="0.75">` +
    `<stop offset="0" stop-color="#fff" stop-opacity="0.14"/><stop offset="1" stop-color="#fff" stop-opacity="0"/></radialGradient>` +
    `<radialGradient id="vignette" cx="0.5" cy="0.5" r="0.75">` +
    `<stop offset="0.55" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#000" stop-opacity="0.45"/></radialGradient>`
  );
}

function drawBelt(width: number, height: number): string {
  const railHeight = height * 0.11;
  const beltTop = railHeight;
  const beltBottom = height - railHeight;
  const bolts = (y: number) => {
    let out = '';
    for (let x = 40; x < width; x += 110) {
      out += `<circle cx="${f(x)}" cy="${f(y)}" r="4.5" fill="#8e979c" stroke="#4a5156" stroke-width="1.2"/>`;
    }
    return out;
  };
  return (
    `<rect width="${f(width)}" height="${f(height)}" fill="#24272a"/>` +
    `<rect y="${f(beltTop)}" width="${f(width)}" height="${f(beltBottom - beltTop)}" fill="url(#beltLinks)"/>` +
    `<rect y="${f(beltTop)}" width="${f(width)}" height="${f(beltBottom - beltTop)}" fill="url(#grimeTile)"/>` +
    // Side rails, with the lip that casts a thin shadow onto the belt.
    `<rect width="${f(width)}" height="${f(railHeight)}" fill="url(#railSteel)"/>` +
    `<rect y="${f(railHeight)}" width="${f(width)}" height="5" fill="#000" fill-opacity="0.45"/>` +
    `<g transform="translate(0 ${f(height)}) scale(1 -1)">` +
    `<rect width="${f(width)}" height="${f(railHeight)}" fill="url(#railSteel)"/>` +
    `<rect y="${f(railHeight)}" width="${f(width)}" height="3" fill="#000" fill-opacity="0.35"/></g>` +
    bolts(railHeight * 0.45) +
    bolts(height - railHeight * 0.45)
  );
}

function drawShadow(scene: YoghurtScene): string {
  const r = scene.cupRadius;
  const rad = (scene.lightAngle * Math.PI) / 180;
  // The shadow falls away from the light, around the base of the cup.
  const baseY = scene.cupY + r * CUP_SHAPE.bodyDepth * 0.8;
  const dx = -Math.cos(rad) * scene.shadowLength;
  const dy = -Math.sin(rad) * scene.shadowLength * 0.6 + r * 0.15;
  return (
    `<ellipse cx="${f(scene.cupX + dx)}" cy="${f(baseY + dy)}" rx="${f(r * 1.25)}" ry="${f(r * (scene.viewAspect + 0.45))}" ` +
    `fill="url(#shadowFade)" ` +
    `transform="rotate(${f(scene.tilt)} ${f(scene.cupX)} ${f(scene.cupY)})"/>`
  );
}

function drawCup(scene: YoghurtScene, design: FlavourDesign): string {
  const r = scene.cupRadius;
  const k = scene.viewAspect;
  const bottom = r * CUP_SHAPE.bottomRatio;
  const depth = r * CUP_SHAPE.bodyDepth;
  const radiusAt = (t: number) => r - (r - bottom) * t;
  const body =
    `M${f(-r)} 0L${f(-bottom)} ${f(depth)}A${f(bottom)} ${f(bottom * k)} 0 0 0 ${f(bottom)} ${f(depth)}L${f(r)} 0Z`;
  const bandPath = (from: number, to: number) => {
    const r1 = radiusAt(from);
    const r2 = radiusAt(to);
    const y1 = depth * from;
    const y2 = depth * to;
    return (
      `M${f(-r1)} ${f(y1)}A${f(r1)} ${f(r1 * k)} 0 0 0 ${f(r1)} ${f(y1)}` +
      `L${f(r2)} ${f(y2)}A${f(r2)} ${f(r2 * k)} 0 0 1 ${f(-r2)} ${f(y2)}Z`
    );
  };
  const { bandTop, bandBottom } = CUP_SHAPE;
  const band = bandPath(bandTop, bandBottom);
  const rim = r * CUP_SHAPE.rimRatio;
  return (
    `<g transform="translate(${f(scene.cupX)} ${f(scene.cupY)}) rotate(${f(scene.tilt)})">` +
    `<clipPath id="cupBody"><path d="${body}"/></clipPath>` +
    `<path d="${body}" fill="${design.cupColour}"/>` +
    `<g clip-path="url(#cupBody)">` +
    `<path d="${band}" fill="${design.band.base}"/>` +
    `<path d="${bandPath(bandTop, bandTop + 0.07)}" fill="${design.band.border}"/>` +
    `<path d="${bandPath(bandBottom - 0.07, bandBottom)}" fill="${design.band.border}"/>` +
    drawBandPrint(scene, design, depth, radiusAt) +
    `<path d="${body}" fill="url(#cylinder)"/>` +
    `</g>` +
    // Rim, then the foil lid drawn flat as a circle and foreshortened by the view.
    `<ellipse cx="0" cy="0" rx="${f(rim)}" ry="${f(rim * k)}" fill="#e9e9e4" stroke="#b9bab4" stroke-width="1.2"/>` +
    `<ellipse cx="0" cy="${f(rim * k * 0.08)}" rx="${f(rim)}" ry="${f(rim * k)}" fill="none" stroke="#8d8e89" stroke-width="1.5" stroke-opacity="0.6"/>` +
    `<g transform="scale(1 ${f(k)})">${drawLid(scene, design)}</g>` +
    `</g>`
  );
}

/**
 * Fruit and name printed round the band, each piece placed at its angle on the cylinder
 * and squeezed by cos(angle), so the print turns with the cup and vanishes at the sides.
 */
function drawBandPrint(scene: YoghurtScene, design: FlavourDesign, depth: number, radiusAt: (t: number) => number): string {
  const k = scene.viewAspect;
  const turn = scene.spin * 2 * Math.PI;
  // One piece of print at `angle` (0 = facing the camera), `t` down the body.
  const place = (angle: number, t: number, size: number, content: string) => {
    const facing = Math.cos(angle);
    if (facing < 0.08) return '';
    const radius = radiusAt(t);
    const x = radius * Math.sin(angle);
    const y = depth * t + radius * k * facing;
    return `<g transform="translate(${f(x)} ${f(y)}) scale(${f(size * facing)} ${f(size)})">${content}</g>`;
  };
  const fruitCount = 7;
  let print = '';
  for (let i = 0; i < fruitCount; i++) {
    const angle = wrapAngle(turn + ((i + 0.5) * 2 * Math.PI) / fruitCount);
    print += place(angle, 0.64, scene.cupRadius * 0.14, motifSvg(design.band.motif));
  }
  // The name runs once round the cup, centred opposite the seam.
  const textT = 0.36;
  const capHeight = scene.cupRadius * 0.15;
  const scale = capHeight / GLYPH_SIZE.height;
  const glyphs = strokeGlyphs(design.title);
  const textWidth = strokeTextWidth(design.title);
  const textRadius = radiusAt(textT);
  let letters = '';
  for (const glyph of glyphs) {
    if (!glyph.path) continue;
    const angle = wrapAngle(turn + ((glyph.centre - textWidth / 2) * scale) / textRadius);
    letters += place(
      angle,
      textT,
      scale,
      `<path transform="translate(${-GLYPH_SIZE.width / 2} ${-GLYPH_SIZE.height / 2})" d="${glyph.path}"/>`,
    );
  }
  return print + `<g ${strokeStyle(design.band.textColour, 1.15)}>${letters}</g>`;
}

function wrapAngle(angle: number): number {
  return Math.atan2(Math.sin(angle), Math.cos(angle));
}

function drawLid(scene: YoghurtScene, design: FlavourDesign): string {
  const r = scene.cupRadius * 0.95;
  return (
    `<clipPath id="lidFoil"><circle r="${f(r)}"/></clipPath>` +
    `<g clip-path="url(#lidFoil)">` +
    `<g transform="rotate(${f(scene.spin * 360)})">` +
    `<circle r="${f(r)}" fill="${design.lid.base}"/>` +
    lidPattern(design.lid.pattern, design.lid.patternColour, r) +
    // Brand badge shared by the whole product line.
    `<ellipse cx="0" cy="${f(-r * 0.58)}" rx="${f(r * 0.36)}" ry="${f(r * 0.17)}" fill="#1d6b4a" stroke="#ffffff" stroke-width="${f(r * 0.03)}"/>` +
    strokeText('LANE', { x: 0, y: -r * 0.58, capHeight: r * 0.14, colour: '#ffffff', weight: 1.2 }) +
    `<circle cy="${f(r * 0.04)}" r="${f(r * 0.4)}" fill="${design.band.base}" stroke="${design.band.border}" stroke-width="${f(r * 0.025)}"/>` +
    `<g transform="translate(0 ${f(r * 0.04)}) scale(${f(r * 0.3)})">${motifSvg(design.band.motif)}</g>` +
    strokeText(design.title, { x: 0, y: r * 0.55, capHeight: r * 0.15, colour: design.lid.textColour, weight: 1.3 }) +
    `</g>` +
    `<circle r="${f(r)}" fill="url(#foilSheen)"/>` +
    `</g>` +
    `<circle r="${f(r)}" fill="none" stroke="#000" stroke-opacity="0.18" stroke-width="${f(r * 0.025)}"/>`
  );
}

function lidPattern(pattern: LidPattern, colour: string, r: number): string {
  const shapes: string[] = [];
  switch (pattern) {
    case 'dots':
      for (let y = -r; y <= r; y += r * 0.22) {
        for (let x = -r + ((Math.round(y / (r * 0.22)) & 1) * r * 0.11); x <= r; x += r * 0.22) {
          shapes.push(`<circle cx="${f(x)}" cy="${f(y)}" r="${f(r * 0.045)}"/>`);
        }
      }
      return `<g fill="${colour}">${shapes.join('')}</g>`;
    case 'stripes':
      for (let x = -2 * r; x <= 2 * r; x += r * 0.2) {
        shapes.push(`<path d="M${f(x)} ${f(-r)}l${f(r * 2)} ${f(r * 2)}"/>`);
      }
      return `<g stroke="${colour}" stroke-width="${f(r * 0.07)}">${shapes.join('')}</g>`;
    case 'rays':
      for (let a = 0; a < 360; a += 20) {
        shapes.push(`<path d="M0 0L${f(r * 1.5)} ${f(-r * 0.22)}L${f(r * 1.5)} ${f(r * 0.22)}Z" transform="rotate(${a})"/>`);
      }
      return `<g fill="${colour}">${shapes.join('')}</g>`;
    case 'waves':
      for (let y = -r; y <= r; y += r * 0.2) {
        shapes.push(`<path d="M${f(-r)} ${f(y)}q${f(r * 0.25)} ${f(-r * 0.08)} ${f(r * 0.5)} 0t${f(r * 0.5)} 0t${f(r * 0.5)} 0t${f(r * 0.5)} 0"/>`);
      }
      return `<g fill="none" stroke="${colour}" stroke-width="${f(r * 0.035)}">${shapes.join('')}</g>`;
    case 'checks':
      for (let y = -r; y <= r; y += r * 0.25) {
        for (let x = -r + ((Math.round(y / (r * 0.25)) & 1) * r * 0.25); x <= r; x += r * 0.5) {
          shapes.push(`<rect x="${f(x)}" y="${f(y)}" width="${f(r * 0.25)}" height="${f(r * 0.25)}"/>`);
        }
      }
      return `<g fill="${colour}">${shapes.join('')}</g>`;
  }
}

function drawIllumination(width: number, height: number): string {
  return (
    `<rect width="${f(width)}" height="${f(height)}" fill="url(#hotspot)"/>` +
    `<rect width="${f(width)}" height="${f(height)}" fill="url(#vignette)"/>`
  );
}
