import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { prepareImage } from '../../../src/image/index.js';
import { BLUE, GREEN, RED, YELLOW, assertColourNear, assertRegion, encodeRaw, paintRaw, pixelAt, quadrantsRaw, type Rgb } from './helpers.js';

/** 300x100: red up to x=80, green to x=220, blue after. Cover to a square keeps only x 100..200. */
const bands = paintRaw(300, 100, (x) => (x < 80 ? RED : x < 220 ? GREEN : BLUE));

test('cover fills the output and centre-crops the excess', async () => {
  const png = await encodeRaw(bands, 'png');
  const out = await prepareImage(png, { width: 50, height: 50, fit: { kind: 'cover' } });
  assert.equal(out.data.length, 50 * 50 * 3);
  assertRegion(out.data, 50, { left: 0, top: 0, right: 50, bottom: 50 }, GREEN, 2, 'cover');
  // The default policy is cover.
  const byDefault = await prepareImage(png, { width: 50, height: 50 });
  assert.deepEqual(Buffer.from(byDefault.data), Buffer.from(out.data));
});

test('contain keeps the whole frame and pads with the background colour', async () => {
  const png = await encodeRaw(bands, 'png');
  const background = { r: 10, g: 20, b: 30 };
  const bg: Rgb = [10, 20, 30];
  // 300x100 scaled to 60x20, centred vertically in 60x60: rows 20..39 are the picture.
  const out = await prepareImage(png, { width: 60, height: 60, fit: { kind: 'contain', background } });
  assertRegion(out.data, 60, { left: 0, top: 0, right: 60, bottom: 20 }, bg, 0, 'top padding');
  assertRegion(out.data, 60, { left: 0, top: 40, right: 60, bottom: 60 }, bg, 0, 'bottom padding');
  assertColourNear(pixelAt(out.data, 60, 5, 30), RED, 4, 'left of picture');
  assertColourNear(pixelAt(out.data, 60, 30, 30), GREEN, 4, 'centre of picture');
  assertColourNear(pixelAt(out.data, 60, 55, 30), BLUE, 4, 'right of picture');

  // Without a colour the padding is black.
  const black = await prepareImage(png, { width: 60, height: 60, fit: { kind: 'contain' } });
  assertRegion(black.data, 60, { left: 0, top: 0, right: 60, bottom: 20 }, [0, 0, 0], 0, 'default padding');
  assertColourNear(pixelAt(black.data, 60, 30, 30), GREEN, 4, 'centre of picture');
});

test('roi takes a fixed region of the source, from encoded or raw frames', async () => {
  const raw = quadrantsRaw(200, 200);
  const png = await encodeRaw(raw, 'png');
  const cases: { region: { left: number; top: number; width: number; height: number }; colour: Rgb; name: string }[] = [
    { region: { left: 10, top: 10, width: 80, height: 80 }, colour: RED, name: 'top-left' },
    { region: { left: 110, top: 5, width: 80, height: 80 }, colour: GREEN, name: 'top-right' },
    { region: { left: 0, top: 120, width: 100, height: 80 }, colour: BLUE, name: 'bottom-left' },
    { region: { left: 100, top: 100, width: 100, height: 100 }, colour: YELLOW, name: 'bottom-right corner' },
  ];
  for (const { region, colour, name } of cases) {
    for (const [form, input] of [['png', png], ['raw', raw]] as const) {
      const out = await prepareImage(input, { width: 24, height: 24, fit: { kind: 'roi', ...region } });
      assertRegion(out.data, 24, { left: 0, top: 0, right: 24, bottom: 24 }, colour, 2, `${name} from ${form}`);
    }
  }
  // A wide region is then cover-cropped: 160x40 across the top-left/top-right border keeps its centre.
  const wide = await prepareImage(png, { width: 20, height: 20, fit: { kind: 'roi', left: 20, top: 10, width: 160, height: 40 } });
  assertColourNear(pixelAt(wide.data, 20, 2, 10), RED, 4, 'wide roi left');
  assertColourNear(pixelAt(wide.data, 20, 17, 10), GREEN, 4, 'wide roi right');
});

test('EXIF orientation is applied before fitting and before a region of interest', async () => {
  const upright = quadrantsRaw(120, 80);
  // Orientation 6 means "turn 90 degrees clockwise to display": store the picture turned the other way.
  const stored = await sharp(upright.data, { raw: { width: 120, height: 80, channels: 3 } }).rotate(270).raw().toBuffer();
  const withTag = await sharp(stored, { raw: { width: 80, height: 120, channels: 3 } })
    .withMetadata({ orientation: 6 })
    .jpeg({ quality: 95 })
    .toBuffer();
  const meta = await sharp(withTag).metadata();
  assert.deepEqual([meta.orientation, meta.width, meta.height], [6, 80, 120]);

  const out = await prepareImage(withTag, { width: 60, height: 40, fit: { kind: 'contain' } });
  assertColourNear(pixelAt(out.data, 60, 8, 6), RED, 20, 'top-left');
  assertColourNear(pixelAt(out.data, 60, 52, 6), GREEN, 20, 'top-right');
  assertColourNear(pixelAt(out.data, 60, 8, 34), BLUE, 20, 'bottom-left');
  assertColourNear(pixelAt(out.data, 60, 52, 34), YELLOW, 20, 'bottom-right');

  // The region is given in upright pixels: the bottom-right quadrant of the picture as seen.
  const roi = await prepareImage(withTag, { width: 16, height: 16, fit: { kind: 'roi', left: 70, top: 45, width: 40, height: 30 } });
  assertRegion(roi.data, 16, { left: 0, top: 0, right: 16, bottom: 16 }, YELLOW, 20, 'upright roi');
  // Upright width is 120, so a region reaching x=110 is inside although the stored width is 80.
  await prepareImage(withTag, { width: 8, height: 8, fit: { kind: 'roi', left: 90, top: 0, width: 20, height: 10 } });

  // Without the tag the same pixels come out turned, so the check above can fail.
  const noTag = await sharp(stored, { raw: { width: 80, height: 120, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
  const turned = await prepareImage(noTag, { width: 40, height: 60, fit: { kind: 'contain' } });
  assertColourNear(pixelAt(turned.data, 40, 6, 8), GREEN, 20, 'untagged top-left');
});
