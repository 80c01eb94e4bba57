#!/bin/sh
# The seed's sgetakeover ("3. 이중화 자동 스크립트" in /work/shared/seed/), as
# written, with only its paths adapted to one lab by the takeover benchmark
# (bench/takeover/seed.go fills in the @...@ fields):
#   - /engrid/ensge becomes the lab's SGE_ROOT and the cell "default" the lab's
#     cell; the spool lives beside the cell in the lab (@SPOOL_BASE@), not
#     under $SGE_ROOT/default, so cp -a and the new paths point there, and the
#     "cut -f 5 -d /" field is the lab's spool directory's (@FIELD@);
#   - the bootstrap heredoc keeps the seed's lines, with the lab's values
#     for the site-specific ones (admin user, binary path, ignore_fqdn);
#   - utilbin/lx24-amd64 is Debian's utilbin/lx-amd64;
#   - ensh, the site's parallel shell, is a function that runs its command
#     on every exec host at once over ssh with the lab's key, and waits.
ensh() {
	for h in @EXEC_HOSTS@; do
		ssh -n -F /dev/null -i @KEY@ -o UserKnownHostsFile=@KNOWN_HOSTS@ -o StrictHostKeyChecking=yes \
			-o BatchMode=yes -o ConnectTimeout=10 root@$h "$@" &
	done
	wait
}
SGE_ROOT="@SGE_ROOT@"
TMPNAME=`date +%Y%m%d%H%M%S`
ODLNAME=`cat $SGE_ROOT/@CELL@/common/bootstrap | grep spooling_params | awk '{print $2}' | cut -f @FIELD@ -d /`
cp -a @SPOOL_BASE@/${ODLNAME} @SPOOL_BASE@/spool_${TMPNAME}
cat <<BOOTSTRAP> $SGE_ROOT/@CELL@/common/bootstrap
# Version: 6.2u3
#
admin_user             @ADMIN_USER@
default_domain          none
ignore_fqdn             @IGNORE_FQDN@
spooling_method         berkeleydb
spooling_lib            libspoolb
spooling_params         @SPOOL_BASE@/spool_${TMPNAME}/spooldb
binary_path             @BINARY_PATH@
qmaster_spool_dir       @SPOOL_BASE@/spool_${TMPNAME}/qmaster
security_mode           none
listener_threads        2
worker_threads          2
scheduler_threads       1
jvm_threads             0
BOOTSTRAP
echo `$SGE_ROOT/utilbin/lx-amd64/gethostname -name` > $SGE_ROOT/@CELL@/common/act_qmaster
$SGE_ROOT/@CELL@/common/sgemaster start
ensh $SGE_ROOT/@CELL@/common/sgeexecd softstop
ensh $SGE_ROOT/@CELL@/common/sgeexecd start
