"""Mail that comes back, as the inbound tests send it (CRLF line ends, as on the
wire): a delivery status notification written from RFC 3464's appendix examples
and a feedback report from RFC 5965's appendix B, each pointed at one of our messages.

Importable from any test folder (tests/ is on sys.path once tests/conftest.py
has loaded)."""

import smtplib

from app.core.store import Store
from app.core.tokens import StoreBinding, load_keyring, store_binding

DOMAIN = "in.example.org"


def binding(store: Store) -> StoreBinding:
    with store.read() as session:
        return store_binding(session)


def token_for(store: Store, profile_id: int, campaign_id: int | None = None) -> str:
    """The signed token our message to this person (of this campaign) carries."""
    return load_keyring().sign(profile_id, campaign_id, store=binding(store))


def altered(token: str) -> str:
    """The token with one character changed (still canonical base64url)."""
    last = token[-2]
    return token[:-2] + ("B" if last != "B" else "C") + token[-1]


# RFC 3464 appendix A.2 (a multi-recipient DSN), the first recipient a
# permanent failure; ``status`` and ``action`` replace the first one's.
def dsn(status: str = "5.0.0 (permanent failure)", action: str = "failed") -> bytes:
    return f"""\
Date: Thu, 7 Jul 1994 17:16:05 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Message-Id: <199407072116.RAA14128@CS.UTK.EDU>
Subject: Returned mail: User unknown
To: <bounces@{DOMAIN}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
              boundary="JAA13167.773673707/CS.UTK.EDU"

--JAA13167.773673707/CS.UTK.EDU
content-type: text/plain; charset=us-ascii

   ----- The following addresses had delivery problems -----
<arathib@vnet.ibm.com>  (unrecoverable error)
<wsnell@sdcc13.ucsd.edu>  (unrecoverable error)

--JAA13167.773673707/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;arathib@vnet.ibm.com
Final-Recipient: rfc822;arathib@vnet.ibm.com
Action: {action}
Status: {status}
Diagnostic-Code: smtp;  550 'arathib@vnet.IBM.COM' is not a
    registered gateway user
Remote-MTA: dns; vnet.ibm.com

Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Final-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Action: delayed
Status: 4.0.0 (hpnjld.njd.jp.com: host name lookup failure)

--JAA13167.773673707/CS.UTK.EDU
content-type: message/rfc822

[original message goes here]

--JAA13167.773673707/CS.UTK.EDU--
""".replace("\n", "\r\n").encode()


# RFC 3464 appendix A.1 (a simple DSN): "Cannot send message for 5 days", 4.0.0.
SOFT_DSN = """\
Date: Thu, 7 Jul 1994 17:16:05 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Message-Id: <199407072116.RAA14128@CS.UTK.EDU>
Subject: Returned mail: Cannot send message for 5 days
To: <owner-info-mime@cs.utk.edu>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
              boundary="RAA14128.773615765/CS.UTK.EDU"

--RAA14128.773615765/CS.UTK.EDU

   The original message was received at Sat, 2 Jul 1994 17:10:28 -0400
   from root@localhost

      ----- The following addresses had delivery problems -----
<louisl@larry.slip.umd.edu>  (unrecoverable error)

--RAA14128.773615765/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;louisl@larry.slip.umd.edu
Final-Recipient: rfc822;louisl@larry.slip.umd.edu
Action: failed
Status: 4.0.0
Diagnostic-Code: smtp; 426 connection timed out
Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400

--RAA14128.773615765/CS.UTK.EDU
content-type: message/rfc822

[original message goes here]

--RAA14128.773615765/CS.UTK.EDU--
""".replace("\n", "\r\n").encode()


def arf(token: str, *, base_url: str = "https://news.example.com") -> bytes:
    """RFC 5965 appendix B.1, the quoted message being one of ours (its List-Unsubscribe)."""
    return f"""\
From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <fbl@{DOMAIN}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

Received: from mailserver.example.net
     (mailserver.example.net [192.0.2.1])
     by example.com with ESMTP id M63d4137594e46;
     Thu, 08 Mar 2005 14:00:00 -0400
From: <news@example.net>
To: <ann@example.com>
Subject: Earn money
MIME-Version: 1.0
Content-type: text/plain
List-Unsubscribe: <{base_url}/u/{token}>,
 <mailto:unsubscribe+{token}@{DOMAIN}>
List-Unsubscribe-Post: List-Unsubscribe=One-Click
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

Spam Spam Spam
Spam Spam Spam
--part1_13d.2e68ed54_boundary--
""".replace("\n", "\r\n").encode()


def send(port: int, rcpt: str, content: bytes = b"Subject: unsubscribe\r\n\r\n") -> None:
    """One message over SMTP to the listener; raises what smtplib raises on a refusal."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.sendmail("someone@example.net", [rcpt], content)
