/*
 * ratel_gw: a freeDiameter extension that plays a packet gateway (Gy client)
 * against ratel, for the interop test and the benchmark.
 *
 * Built by the tests:  gcc -shared -fPIC -o ratel_gw.fdx ratel_gw.c -lfdcore -lfdproto
 * Loaded by freeDiameterd with a parameter string (after dict_nasreq, dict_dcca
 * and dict_dcca_3gpp):
 *
 *   mode=test ocs=ocs.ratel.local realm=ratel.local msisdn=12055550100 out=/tmp/x.log
 *     CCR-I with two MSCC (rating groups 1 and 10), CCR-U reporting input and
 *     output octets, then "OPEN <session>" in the log; waits for a RAR (answered
 *     2001, logged "RAR <session>"), sends CCR-T, logs "DONE" and shuts down.
 *   mode=load ocs=... realm=... msisdn=<first> subscribers=N sessions=S updates=U out=...
 *     S concurrent sessions (subscriber i % N), each CCR-I, U x CCR-U (one in
 *     flight per session), CCR-T; logs the CCR-U count, seconds and the
 *     p50/p95 latency in microseconds, then shuts down.
 *
 * Every answer is logged as "CCA <type> <result> [<rg>:<result>:<granted octets>]...".
 */
#include <freeDiameter/extension.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 256

static struct dict_object *d_app, *d_ccr, *d_rar, *d_session_id, *d_dest_realm, *d_auth_app,
    *d_context, *d_req_type, *d_req_number, *d_sub_id, *d_sub_type, *d_sub_data, *d_mscc,
    *d_rsu, *d_usu, *d_gsu, *d_rating_group, *d_total, *d_input, *d_output, *d_result;
static struct disp_hdl *rar_handle;

static char mode[16] = "test", ocs[128] = "ocs.ratel.local", realm[128] = "ratel.local";
static char msisdn[32] = "12055550100", out_path[512] = "/tmp/ratel_gw.log";
static int subscribers = 1, sessions = 1, updates = 10;
static FILE *out;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t rar_seen;
static pthread_t worker;

struct exchange {
    sem_t done;
    uint32_t result;
};

static void say(const char *format, ...)
{
    va_list args;
    pthread_mutex_lock(&out_lock);
    va_start(args, format);
    vfprintf(out, format, args);
    va_end(args);
    fputc('\n', out);
    fflush(out);
    pthread_mutex_unlock(&out_lock);
}

static int add_u32(msg_or_avp *parent, struct dict_object *model, uint32_t value)
{
    struct avp *avp;
    union avp_value v;
    v.u32 = value;
    CHECK_FCT(fd_msg_avp_new(model, 0, &avp));
    CHECK_FCT(fd_msg_avp_setvalue(avp, &v));
    return fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, avp);
}

static int add_i32(msg_or_avp *parent, struct dict_object *model, int32_t value)
{
    struct avp *avp;
    union avp_value v;
    v.i32 = value;
    CHECK_FCT(fd_msg_avp_new(model, 0, &avp));
    CHECK_FCT(fd_msg_avp_setvalue(avp, &v));
    return fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, avp);
}

static int add_u64(msg_or_avp *parent, struct dict_object *model, uint64_t value)
{
    struct avp *avp;
    union avp_value v;
    v.u64 = value;
    CHECK_FCT(fd_msg_avp_new(model, 0, &avp));
    CHECK_FCT(fd_msg_avp_setvalue(avp, &v));
    return fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, avp);
}

static int add_text(msg_or_avp *parent, struct dict_object *model, const char *text, int first)
{
    struct avp *avp;
    union avp_value v;
    v.os.data = (uint8_t *)text;
    v.os.len = strlen(text);
    CHECK_FCT(fd_msg_avp_new(model, 0, &avp));
    CHECK_FCT(fd_msg_avp_setvalue(avp, &v));
    return fd_msg_avp_add(parent, first ? MSG_BRW_FIRST_CHILD : MSG_BRW_LAST_CHILD, avp);
}

/* One MSCC: a rating group, an empty RSU when units are wanted, a USU when some were used. */
static int add_mscc(struct msg *msg, uint32_t rating_group, int want, uint64_t in, uint64_t outb)
{
    struct avp *mscc, *unit;
    CHECK_FCT(fd_msg_avp_new(d_mscc, 0, &mscc));
    if (want) {
        CHECK_FCT(fd_msg_avp_new(d_rsu, 0, &unit));
        CHECK_FCT(fd_msg_avp_add(mscc, MSG_BRW_LAST_CHILD, unit));
    }
    if (in || outb) {
        CHECK_FCT(fd_msg_avp_new(d_usu, 0, &unit));
        CHECK_FCT(add_u64(unit, d_input, in));
        CHECK_FCT(add_u64(unit, d_output, outb));
        CHECK_FCT(fd_msg_avp_add(mscc, MSG_BRW_LAST_CHILD, unit));
    }
    CHECK_FCT(add_u32(mscc, d_rating_group, rating_group));
    return fd_msg_avp_add(msg, MSG_BRW_LAST_CHILD, mscc);
}

static struct avp *child(msg_or_avp *parent, avp_code_t code)
{
    struct avp *avp = NULL;
    struct avp_hdr *hdr;
    if (fd_msg_browse(parent, MSG_BRW_FIRST_CHILD, &avp, NULL))
        return NULL;
    while (avp) {
        if (fd_msg_avp_hdr(avp, &hdr) == 0 && hdr->avp_code == code && hdr->avp_vendor == 0)
            return avp;
        if (fd_msg_browse(avp, MSG_BRW_NEXT, &avp, NULL))
            return NULL;
    }
    return NULL;
}

static uint64_t number(msg_or_avp *parent, avp_code_t code, int wide)
{
    struct avp *avp = child(parent, code);
    struct avp_hdr *hdr;
    if (!avp || fd_msg_avp_hdr(avp, &hdr) || !hdr->avp_value)
        return 0;
    return wide ? hdr->avp_value->u64 : hdr->avp_value->u32;
}

static void answered(void *data, struct msg **answer)
{
    struct exchange *exchange = data;
    char line[1024];
    int used = 0;
    struct avp *avp = NULL;
    struct avp_hdr *hdr;

    exchange->result = (uint32_t)number(*answer, 268, 0);
    if (mode[0] == 't') {
        used = snprintf(line, sizeof(line), "CCA %u %u", (unsigned)number(*answer, 416, 0),
                        exchange->result);
        fd_msg_browse(*answer, MSG_BRW_FIRST_CHILD, &avp, NULL);
        while (avp && used < (int)sizeof(line) - 64) {
            if (fd_msg_avp_hdr(avp, &hdr) == 0 && hdr->avp_code == 456) {
                struct avp *gsu = child(avp, 431);
                used += snprintf(line + used, sizeof(line) - used, " %u:%u:%llu",
                                 (unsigned)number(avp, 432, 0), (unsigned)number(avp, 268, 0),
                                 (unsigned long long)(gsu ? number(gsu, 421, 1) : 0));
            }
            fd_msg_browse(avp, MSG_BRW_NEXT, &avp, NULL);
        }
        say("%s", line);
    }
    fd_msg_free(*answer);
    *answer = NULL;
    sem_post(&exchange->done);
}

static void expired(void *data, DiamId_t sentto, size_t len, struct msg **request)
{
    struct exchange *exchange = data;
    (void)sentto;
    (void)len;
    fd_msg_free(*request);
    *request = NULL;
    exchange->result = 0;
    sem_post(&exchange->done);
}

/* Send one CCR and wait for its answer; the answer's Result-Code (0: none). */
static uint32_t credit_control(const char *session, const char *subscriber, int type,
                               uint32_t request_number, int msccs, uint64_t in, uint64_t outb)
{
    struct msg *msg = NULL;
    struct exchange exchange;
    struct timespec deadline;

    sem_init(&exchange.done, 0, 0);
    exchange.result = 0;
    CHECK_FCT_DO(fd_msg_new(d_ccr, MSGFL_ALLOC_ETEID, &msg), return 0);
    CHECK_FCT_DO(add_text(msg, d_session_id, session, 1), return 0);
    CHECK_FCT_DO(fd_msg_add_origin(msg, 0), return 0);
    CHECK_FCT_DO(add_text(msg, d_dest_realm, realm, 0), return 0);
    CHECK_FCT_DO(add_u32(msg, d_auth_app, 4), return 0);
    CHECK_FCT_DO(add_text(msg, d_context, "32251@3gpp.org", 0), return 0);
    CHECK_FCT_DO(add_i32(msg, d_req_type, type), return 0);
    CHECK_FCT_DO(add_u32(msg, d_req_number, request_number), return 0);
    if (type == 1) {
        struct avp *sub;
        CHECK_FCT_DO(fd_msg_avp_new(d_sub_id, 0, &sub), return 0);
        CHECK_FCT_DO(add_i32(sub, d_sub_type, 0), return 0); /* END_USER_E164 */
        CHECK_FCT_DO(add_text(sub, d_sub_data, subscriber, 0), return 0);
        CHECK_FCT_DO(fd_msg_avp_add(msg, MSG_BRW_LAST_CHILD, sub), return 0);
    }
    if (msccs > 1)
        CHECK_FCT_DO(add_mscc(msg, 1, type != 3, in, outb), return 0);
    CHECK_FCT_DO(add_mscc(msg, 10, type != 3, in, outb), return 0);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    CHECK_FCT_DO(fd_msg_send_timeout(&msg, answered, &exchange, expired, &deadline), return 0);
    sem_wait(&exchange.done);
    sem_destroy(&exchange.done);
    return exchange.result;
}

static int rar_received(struct msg **msg, struct avp *avp, struct session *sess, void *opaque,
                        enum disp_action *act)
{
    char session[256] = "";
    struct avp *sid = NULL;
    struct avp_hdr *hdr;
    (void)avp;
    (void)sess;
    (void)opaque;
    (void)act;
    if (fd_msg_search_avp(*msg, d_session_id, &sid) == 0 && sid && fd_msg_avp_hdr(sid, &hdr) == 0)
        snprintf(session, sizeof(session), "%.*s", (int)hdr->avp_value->os.len,
                 hdr->avp_value->os.data);
    CHECK_FCT(fd_msg_new_answer_from_req(fd_g_config->cnf_dict, msg, 0));
    CHECK_FCT(fd_msg_rescode_set(*msg, "DIAMETER_SUCCESS", NULL, NULL, 1));
    CHECK_FCT(fd_msg_send(msg, NULL, NULL));
    say("RAR %s", session);
    sem_post(&rar_seen);
    return 0;
}

static int wait_for_ocs(void)
{
    struct peer_hdr *peer = NULL;
    for (int i = 0; i < 300; i++) {
        if (peer == NULL)
            fd_peer_getbyid((DiamId_t)ocs, strlen(ocs), 1, &peer);
        if (peer && fd_peer_get_state(peer) == STATE_OPEN)
            return 0;
        usleep(100000);
    }
    return ETIMEDOUT;
}

static void session_name(char *buffer, size_t size, int index)
{
    snprintf(buffer, size, "%s;%ld;%d;%d", fd_g_config->cnf_diamid, (long)time(NULL),
             (int)getpid(), index);
}

static void run_test(void)
{
    char session[256];
    struct timespec deadline;
    session_name(session, sizeof(session), 0);
    credit_control(session, msisdn, 1, 0, 2, 0, 0);
    credit_control(session, msisdn, 2, 1, 2, 1000000, 3000000);
    say("OPEN %s", session);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    if (sem_timedwait(&rar_seen, &deadline) != 0)
        say("NO RAR");
    credit_control(session, msisdn, 3, 2, 2, 500000, 500000);
}

struct load_session {
    pthread_t thread;
    int index;
    uint32_t count;
    uint32_t errors;
    double *latencies;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *load_one(void *data)
{
    struct load_session *s = data;
    char session[256], subscriber[32];
    long long first = atoll(msisdn);
    snprintf(subscriber, sizeof(subscriber), "%lld", first + s->index % subscribers);
    session_name(session, sizeof(session), s->index);
    if (credit_control(session, subscriber, 1, 0, 1, 0, 0) != 2001)
        s->errors++;
    for (int n = 1; n <= updates; n++) {
        double started = now_us();
        uint32_t result = credit_control(session, subscriber, 2, n, 1, 1000, 1000);
        s->latencies[s->count++] = now_us() - started;
        if (result != 2001)
            s->errors++;
    }
    credit_control(session, subscriber, 3, updates + 1, 1, 1000, 1000);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run_load(void)
{
    struct load_session all[MAX_SESSIONS];
    double *latencies = calloc((size_t)sessions * updates, sizeof(double));
    uint32_t total = 0, errors = 0;
    double started = now_us(), seconds;
    for (int i = 0; i < sessions; i++) {
        all[i].index = i;
        all[i].count = 0;
        all[i].errors = 0;
        all[i].latencies = latencies + (size_t)i * updates;
        pthread_create(&all[i].thread, NULL, load_one, &all[i]);
    }
    for (int i = 0; i < sessions; i++) {
        pthread_join(all[i].thread, NULL);
        errors += all[i].errors;
    }
    seconds = (now_us() - started) / 1e6;
    /* compact the per-session latencies, then sort them for the percentiles */
    for (int i = 0; i < sessions; i++) {
        memmove(latencies + total, all[i].latencies, all[i].count * sizeof(double));
        total += all[i].count;
    }
    qsort(latencies, total, sizeof(double), by_value);
    say("LOAD count=%u seconds=%.3f p50_us=%.0f p95_us=%.0f errors=%u", total, seconds,
        total ? latencies[total / 2] : 0.0, total ? latencies[(size_t)(total * 0.95)] : 0.0,
        errors);
    free(latencies);
}

static void *work(void *unused)
{
    (void)unused;
    if (wait_for_ocs() != 0) {
        say("NO PEER");
    } else if (strcmp(mode, "load") == 0) {
        run_load();
    } else {
        run_test();
    }
    say("DONE");
    fd_core_shutdown();
    return NULL;
}

static void parameters(char *text)
{
    char *save = NULL;
    for (char *item = strtok_r(text, " ", &save); item; item = strtok_r(NULL, " ", &save)) {
        char *value = strchr(item, '=');
        if (!value)
            continue;
        *value++ = '\0';
        if (!strcmp(item, "mode")) snprintf(mode, sizeof(mode), "%s", value);
        else if (!strcmp(item, "ocs")) snprintf(ocs, sizeof(ocs), "%s", value);
        else if (!strcmp(item, "realm")) snprintf(realm, sizeof(realm), "%s", value);
        else if (!strcmp(item, "msisdn")) snprintf(msisdn, sizeof(msisdn), "%s", value);
        else if (!strcmp(item, "out")) snprintf(out_path, sizeof(out_path), "%s", value);
        else if (!strcmp(item, "subscribers")) subscribers = atoi(value) > 0 ? atoi(value) : 1;
        else if (!strcmp(item, "sessions")) sessions = atoi(value) > 0 ? atoi(value) : 1;
        else if (!strcmp(item, "updates")) updates = atoi(value) > 0 ? atoi(value) : 1;
    }
    if (sessions > MAX_SESSIONS)
        sessions = MAX_SESSIONS;
}

#define AVP(name, var) \
    CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_AVP, AVP_BY_NAME, name, &var, ENOENT))

static int ratel_gw_entry(char *conffile)
{
    application_id_t credit_control_app = 4;
    struct disp_when when;
    char text[1024] = "";
    if (conffile)
        snprintf(text, sizeof(text), "%s", conffile);
    parameters(text);
    out = fopen(out_path, "a");
    if (!out)
        return errno;
    sem_init(&rar_seen, 0, 0);
    CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_APPLICATION, APPLICATION_BY_ID,
                             &credit_control_app, &d_app, ENOENT));
    CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_COMMAND, CMD_BY_NAME,
                             "Credit-Control-Request", &d_ccr, ENOENT));
    CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_COMMAND, CMD_BY_NAME, "Re-Auth-Request",
                             &d_rar, ENOENT));
    AVP("Session-Id", d_session_id);
    AVP("Destination-Realm", d_dest_realm);
    AVP("Auth-Application-Id", d_auth_app);
    AVP("Service-Context-Id", d_context);
    AVP("CC-Request-Type", d_req_type);
    AVP("CC-Request-Number", d_req_number);
    AVP("Subscription-Id", d_sub_id);
    AVP("Subscription-Id-Type", d_sub_type);
    AVP("Subscription-Id-Data", d_sub_data);
    AVP("Multiple-Services-Credit-Control", d_mscc);
    AVP("Requested-Service-Unit", d_rsu);
    AVP("Used-Service-Unit", d_usu);
    AVP("Granted-Service-Unit", d_gsu);
    AVP("Rating-Group", d_rating_group);
    AVP("CC-Total-Octets", d_total);
    AVP("CC-Input-Octets", d_input);
    AVP("CC-Output-Octets", d_output);
    AVP("Result-Code", d_result);
    CHECK_FCT(fd_disp_app_support(d_app, NULL, 1, 0));
    memset(&when, 0, sizeof(when));
    when.app = d_app;
    when.command = d_rar;
    CHECK_FCT(fd_disp_register(rar_received, DISP_HOW_CC, &when, NULL, &rar_handle));
    say("READY %s", mode);
    return pthread_create(&worker, NULL, work, NULL);
}

void fd_ext_fini(void)
{
    if (rar_handle)
        fd_disp_unregister(&rar_handle, NULL);
    if (out)
        fclose(out);
}

EXTENSION_ENTRY("ratel_gw", ratel_gw_entry);
