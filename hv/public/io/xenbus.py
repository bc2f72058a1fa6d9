"""xen/include/public/io/xenbus.h: the states each end of a split device
writes to its `state` node as the two meet, connect and part."""

XenbusStateUnknown = 0
XenbusStateInitialising = 1
# The backend has published what the frontend needs to know and waits for
# the frontend's details.
XenbusStateInitWait = 2
# The frontend has published its ring and channel.
XenbusStateInitialised = 3
XenbusStateConnected = 4
XenbusStateClosing = 5
XenbusStateClosed = 6
XenbusStateReconfiguring = 7
XenbusStateReconfigured = 8

XENBUS_STATE_NAMES = {
    XenbusStateUnknown: "Unknown", XenbusStateInitialising: "Initialising",
    XenbusStateInitWait: "InitWait", XenbusStateInitialised: "Initialised",
    XenbusStateConnected: "Connected", XenbusStateClosing: "Closing",
    XenbusStateClosed: "Closed", XenbusStateReconfiguring: "Reconfiguring",
    XenbusStateReconfigured: "Reconfigured",
}
