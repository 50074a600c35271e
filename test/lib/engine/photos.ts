/**
 * Shared grocery photos decoded for a backbone, with sharp directly (the same centre-crop
 * resize the image stage does), so engine tests do not depend on another stage's code.
 */
import sharp from 'sharp';
import { classImages, classNames, groceryValDir } from '../../support/shared.js';

export interface Photo {
  file: string;
  className: string;
  data: Uint8Array;
}

/** The first `perClass` validation photos of each class, in a fixed order. */
export async function valPhotos(size: { width: number; height: number }, perClass = 5): Promise<Photo[]> {
  const entries = classNames(groceryValDir).flatMap((className) =>
    classImages(groceryValDir, className)
      .slice(0, perClass)
      .map((file) => ({ file, className })),
  );
  return Promise.all(
    entries.map(async ({ file, className }) => ({
      file,
      className,
      data: new Uint8Array(await sharp(file).resize(size.width, size.height).removeAlpha().raw().toBuffer()),
    })),
  );
}
