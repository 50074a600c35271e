/** The review queue: frames an operator should look at, kept on disk (active learning). */
export { DEFAULT_REVIEW_LIMIT, ReviewQueue, reviewReason, type ReviewItem, type ReviewQueueOptions, type ReviewReason } from './review-queue.js';
