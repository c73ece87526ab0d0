"""The `mod_wsgi` module: what mod_wsgi 4.9 gives applications and
monitoring agents, in every interpreter.

wsgi-interp runs this source in a fresh module of each interpreter, with
these names already bound: version, product_version, process_group,
application_group, maximum_processes, threads_per_process, FileWrapper,
_restart_time, _counters (process-wide request counters kept by the
server), _thread_cpu (this thread's CPU times), _scoreboard (Apache's
scoreboard, or None) and _server_metrics (whether server_metrics() may
report it). The server registers
each request in active_requests and _by_thread itself, and calls the
_request_* and _process_stopping functions below only when there is a
callback to call.
"""

import os
import sys
import time
from _thread import get_ident as _get_ident

class RequestTimeout(BaseException):
    """Raised in a request's thread when the request runs past the daemon
    group's request-timeout and interrupt-timeout is set (mod_wsgi 6).
    Derived from BaseException, so that `except Exception` lets it pass."""


event_callbacks = []
shutdown_callbacks = []
active_requests = {}

# Thread ident -> request_data of the request that thread is running.
_by_thread = {}


def subscribe_events(callback):
    """Calls callback(name, **event) for each event of this interpreter."""
    event_callbacks.append(callback)


def subscribe_shutdown(callback):
    """Calls callback('process_stopping', **event) when the process stops."""
    shutdown_callbacks.append(callback)


def request_data():
    """The dict of the request this thread is running."""
    try:
        return _by_thread[_get_ident()]
    except KeyError:
        raise RuntimeError('no active request for thread') from None


_WORKER_KEYS = ('thread_num', 'generation', 'status', 'access_count', 'bytes_served', 'start_time',
                'stop_time', 'last_used', 'client', 'request', 'vhost')


def server_metrics():
    """Apache's scoreboard (WSGIServerMetrics, or server-metrics=On in a
    daemon process group); None where it is off or there is none."""
    if not _server_metrics:
        return None
    board = _scoreboard()
    if board is None:
        return None
    server_limit, thread_limit, running_generation, restart_time, processes = board
    now = time.time()
    return {
        'server_limit': server_limit,
        'thread_limit': thread_limit,
        'running_generation': running_generation,
        'restart_time': restart_time,
        'current_time': now,
        'running_time': int(now - restart_time),
        'processes': [
            {
                'process_num': number,
                'pid': pid,
                'generation': generation,
                'quiescing': quiescing,
                'workers': [dict(zip(_WORKER_KEYS, worker)) for worker in workers],
            }
            for number, (pid, generation, quiescing, workers) in enumerate(processes)
        ],
    }


def _rss():
    try:
        with open('/proc/self/statm') as statm:
            return int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return 0


def _max_rss():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def process_metrics():
    """This process's request counts, times and memory."""
    count, busy, active, threads = _counters()[:4]
    now = time.time()
    times = os.times()
    return {
        'pid': os.getpid(),
        'request_busy_time': busy,
        'request_count': count,
        'memory_max_rss': _max_rss(),
        'memory_rss': _rss(),
        'cpu_user_time': times.user,
        'cpu_system_time': times.system,
        'restart_time': _restart_time,
        'current_time': now,
        'running_time': int(now - _restart_time),
        'request_threads': len(threads),
        'active_requests': active,
        'threads': [{'thread_id': thread, 'request_count': n} for thread, n in threads],
    }


_last_sample = None


def request_metrics():
    """Request statistics since the previous call; the first call starts
    the sampling and returns {}."""
    global _last_sample
    counters = _counters()
    times = os.times()
    sample = (time.time(), counters, times.user, times.system)
    previous, _last_sample = _last_sample, sample
    if previous is None:
        return {}
    start, (count0, busy0, _, threads0, buckets0, app0), user0, system0 = previous
    stop, (count1, busy1, active, threads1, buckets1, app1), user1, system1 = sample
    period = max(stop - start, 1e-9)
    count = count1 - count0
    buckets = [b1 - b0 for b0, b1 in zip(buckets0, buckets1)]
    average = (app1 - app0) / count if count else 0.0
    return {
        'pid': os.getpid(),
        'start_time': start,
        'stop_time': stop,
        'sample_period': period,
        'cpu_user_time': (user1 - user0) / period,
        'cpu_system_time': (system1 - system0) / period,
        'memory_max_rss': _max_rss(),
        'memory_rss': _rss(),
        'request_threads_maximum': threads_per_process,
        'request_threads_started': len(threads1),
        'request_threads_active': active,
        'capacity_utilization': (busy1 - busy0) / (period * max(threads_per_process, 1)),
        'request_count': count,
        'request_throughput': count / period,
        'server_time': average,
        'application_time': average,
        'queue_time': None,
        'daemon_time': None,
        'server_time_buckets': buckets,
        'application_time_buckets': list(buckets),
        'queue_time_buckets': [0] * len(buckets),
        'daemon_time_buckets': [0] * len(buckets),
    }


def _report_callback_error():
    import traceback
    sys.stderr.write('mod_wsgi (pid=%d): Exception occurred within event callback.\n' % os.getpid())
    traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()


def _publish(callbacks, name, event):
    for callback in list(callbacks):
        try:
            result = callback(name, **event)
        except Exception:
            _report_callback_error()
            continue
        if isinstance(result, dict):
            event.update(result)


def _environ_time(environ, key):
    try:
        return int(environ[key]) / 1000000.0
    except (KeyError, TypeError, ValueError):
        return 0.0


def _environ_int(environ, key):
    try:
        return int(environ[key])
    except (KeyError, TypeError, ValueError):
        return 0


def _request_started(application, environ, data, start_response):
    """Publishes request_started; returns the application to call (a
    callback may replace it: `application_object`) and the start_response
    to give it, which publishes response_started."""
    request_id = environ.get('mod_wsgi.request_id')
    event = {
        'request_id': request_id,
        'thread_id': _environ_int(environ, 'mod_wsgi.thread_id'),
        'daemon_connects': _environ_int(environ, 'mod_wsgi.daemon_connects'),
        'daemon_restarts': _environ_int(environ, 'mod_wsgi.daemon_restarts'),
        'request_start': _environ_time(environ, 'mod_wsgi.request_start'),
        'queue_start': _environ_time(environ, 'mod_wsgi.queue_start'),
        'daemon_start': _environ_time(environ, 'mod_wsgi.daemon_start'),
        'application_object': application,
        'request_environ': environ,
        'application_start': time.time(),
        'request_data': data,
    }
    _publish(event_callbacks, 'request_started', event)

    def start_response_published(status, response_headers, exc_info=None):
        _publish(event_callbacks, 'response_started', {
            'request_id': request_id,
            'response_status': status,
            'response_headers': response_headers,
            'exception_info': exc_info,
            'request_data': data,
        })
        return start_response(status, response_headers, exc_info)

    return event.get('application_object', application), start_response_published


def _request_finished(request_id, data, started, io, cpu_started):
    """Publishes request_finished with the request's timings: `started` is
    when the application was called (epoch), `io` the input and output
    counts and times, `cpu_started` this thread's CPU times then."""
    finished = time.time()
    input_reads, input_length, input_time, output_writes, output_length, output_time = io
    event = {
        'request_id': request_id,
        'input_reads': input_reads,
        'input_length': input_length,
        'input_time': input_time,
        'output_length': output_length,
        'output_writes': output_writes,
        'output_time': output_time,
        'application_finish': finished,
        'application_time': finished - started,
        'request_data': data,
    }
    cpu_now = _thread_cpu()
    # As mod_wsgi: only when the thread had a CPU reading at the start.
    if cpu_started is not None and cpu_now is not None and (cpu_started[0] or cpu_started[1]):
        user = max(cpu_now[0] - cpu_started[0], 0.0)
        system = max(cpu_now[1] - cpu_started[1], 0.0)
        elapsed = event['application_time']
        if user + system > elapsed > 0:
            scale = elapsed / (user + system)
            user, system = user * scale, system * scale
        event['cpu_user_time'] = user
        event['cpu_system_time'] = system
    _publish(event_callbacks, 'request_finished', event)


def _request_exception(request_id, data, exception_info):
    _publish(event_callbacks, 'request_exception', {
        'request_id': request_id,
        'exception_info': exception_info,
        'request_data': data,
    })


def _process_stopping(reason):
    """Publishes process_stopping to the event callbacks, then to the
    shutdown callbacks."""
    event = {'shutdown_reason': reason}
    _publish(event_callbacks, 'process_stopping', event)
    _publish(shutdown_callbacks, 'process_stopping', event)
