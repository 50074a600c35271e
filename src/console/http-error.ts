/** An error a console request answers with its HTTP status (400 bad request, 404 unknown frame, 409 busy...). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
