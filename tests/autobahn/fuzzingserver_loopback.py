# Runs Autobahn|Testsuite's fuzzingserver bound to 127.0.0.1 only (wstest itself binds
# every interface), with no embedded web server. Python 2.7 (autobahntestsuite 0.8.2).
#
#   python2.7 fuzzingserver_loopback.py SITE_DIR SPEC_JSON
#
# SITE_DIR is the --target directory the stage script installed autobahntestsuite into.
import site
import sys

site.addsitedir(sys.argv[1])  # processes zope's namespace .pth as well

from autobahntestsuite import fuzzing, wstest  # noqa: E402

_listen = fuzzing.listenWS


def _listen_loopback(factory, contextFactory=None, backlog=50, interface=""):
    return _listen(factory, contextFactory, backlog, interface="127.0.0.1")


fuzzing.listenWS = _listen_loopback
sys.argv = ["wstest", "-m", "fuzzingserver", "-s", sys.argv[2], "-u", "0"]
wstest.run()
