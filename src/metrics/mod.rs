//! Run metrics: histograms per op, intervals, lag, read-your-writes.
