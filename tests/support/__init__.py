"""Helpers of the test suite, shared with bench/: the live stack, private Redis servers, the faults file,
raw looks at the tenant databases, factories, and a next release's tenant-side migrations."""
