/** Dashboard-ready figures of a lane (counts, reject rate, confidence, throughput, last frame, model), free of Node-RED; nodes/lane-stats sends them. */
export { DashboardFeed, modelText, DASHBOARD_TOPICS, type DashboardFeedOptions, type DashboardMessages, type LabelCount, type WidgetMessage } from './dashboard-feed.js';
